package dev.sdjvm.scheduler;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A scheduler config as {@code Cls.from_config(config, **overrides)} sees it: the parsed JSON merged with the
 * overrides, read with typed getters that name the key on a type error. In the config, keys starting with
 * {@code _} and keys the target class does not take are ignored, as diffusers' {@code from_config} ignores them (a
 * model's {@code scheduler_config.json} carries another class's keys); an override must be a key of the class, else
 * it is rejected naming the key (a misspelt override would otherwise do nothing). A {@code null} value, in either,
 * means the key's default.
 */
final class ConfigValues {
    private static final Logger LOG = LoggerFactory.getLogger(ConfigValues.class);
    private final Map<String, Object> values;

    private ConfigValues(Map<String, Object> values) {
        this.values = values;
    }

    /**
     * Merges {@code config} and {@code overrides} (overrides win) for {@code className}, whose accepted keys are
     * {@code classKeys}; logs the keys that are ignored.
     */
    static ConfigValues of(Map<String, ?> config, Map<String, ?> overrides, String className, Set<String> classKeys) {
        Map<String, Object> merged = new LinkedHashMap<>();
        if (config != null) {
            merged.putAll(config);
        }
        if (overrides != null) {
            for (String key : overrides.keySet()) {
                if (key == null || !classKeys.contains(key)) {
                    throw new SchedulerConfigException(key, "unknown config key for " + className + " (its keys: "
                            + new java.util.TreeSet<>(classKeys) + ")");
                }
            }
            merged.putAll(overrides);
        }
        Map<String, Object> kept = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : merged.entrySet()) {
            String key = e.getKey();
            if (key == null || key.startsWith("_")) {
                continue;
            }
            if (classKeys.contains(key)) {
                kept.put(key, e.getValue());
            } else {
                LOG.debug("{}: ignoring config key '{}' (not a parameter of this scheduler, as diffusers ignores it)",
                        className, key);
            }
        }
        return new ConfigValues(kept);
    }

    /** The training-schedule keys every scheduler takes. */
    static final List<String> TRAINING_KEYS = List.of("num_train_timesteps", "beta_start", "beta_end",
            "beta_schedule", "trained_betas");

    /** A scheduler's accepted keys: {@link #TRAINING_KEYS} plus {@code classKeys}. */
    static Set<String> withTrainingKeys(String... classKeys) {
        Set<String> keys = new LinkedHashSet<>(TRAINING_KEYS);
        keys.addAll(List.of(classKeys));
        return Set.copyOf(keys);
    }

    /** {@code num_train_timesteps} (diffusers' default 1000). */
    int numTrainTimesteps() {
        return getInt("num_train_timesteps", 1000);
    }

    /** {@code beta_start} (default 0.0001). */
    double betaStart() {
        return getDouble("beta_start", 0.0001);
    }

    /** {@code beta_end} (default 0.02). */
    double betaEnd() {
        return getDouble("beta_end", 0.02);
    }

    /** {@code beta_schedule} (default linear). */
    String betaSchedule() {
        return getString("beta_schedule", "linear");
    }

    /** {@code trained_betas} (default null). */
    double[] trainedBetas() {
        return getDoubleArray("trained_betas");
    }

    /** {@code prediction_type} (default epsilon). */
    String predictionType() {
        return getString("prediction_type", "epsilon");
    }

    /** {@code steps_offset} (default 0). */
    int stepsOffset() {
        return getInt("steps_offset", 0);
    }

    /** {@code rescale_betas_zero_snr} (default false). */
    boolean rescaleBetasZeroSnr() {
        return getBool("rescale_betas_zero_snr", false);
    }

    /** {@code thresholding} (default false). */
    boolean thresholding() {
        return getBool("thresholding", false);
    }

    /** {@code dynamic_thresholding_ratio} (default 0.995). */
    double dynamicThresholdingRatio() {
        return getDouble("dynamic_thresholding_ratio", 0.995);
    }

    /** {@code sample_max_value} (default 1.0). */
    double sampleMaxValue() {
        return getDouble("sample_max_value", 1.0);
    }

    boolean has(String key) {
        return values.containsKey(key) && values.get(key) != null;
    }

    int getInt(String key, int def) {
        Object v = values.get(key);
        if (v == null) {
            return def;
        }
        if (v instanceof Number n) {
            double d = n.doubleValue();
            if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
                throw new SchedulerConfigException(key, "expected an integer, got " + v);
            }
            return (int) d;
        }
        throw new SchedulerConfigException(key, "expected an integer, got " + describe(v));
    }

    double getDouble(String key, double def) {
        Object v = values.get(key);
        if (v == null) {
            return def;
        }
        if (v instanceof Number n) {
            return n.doubleValue();
        }
        if (v instanceof String s) {
            switch (s.trim().toLowerCase(Locale.ROOT)) {
                case "-inf", "-infinity":
                    return Double.NEGATIVE_INFINITY;
                case "inf", "infinity", "+inf", "+infinity":
                    return Double.POSITIVE_INFINITY;
                default:
                    break;
            }
        }
        throw new SchedulerConfigException(key, "expected a number, got " + describe(v));
    }

    /** A nullable float config value ({@code sigma_min: null}). */
    Double getNullableDouble(String key) {
        return has(key) ? getDouble(key, 0) : null;
    }

    boolean getBool(String key, boolean def) {
        Object v = values.get(key);
        if (v == null) {
            return def;
        }
        if (v instanceof Boolean b) {
            return b;
        }
        throw new SchedulerConfigException(key, "expected true or false, got " + describe(v));
    }

    String getString(String key, String def) {
        Object v = values.get(key);
        if (v == null) {
            return def;
        }
        if (v instanceof String s) {
            return s;
        }
        throw new SchedulerConfigException(key, "expected a string, got " + describe(v));
    }

    /** A string that must be one of {@code allowed} (null allowed when {@code def} is null). */
    String getChoice(String key, String def, Collection<String> allowed) {
        String s = getString(key, def);
        if (s == null && def == null) {
            return null;
        }
        if (!allowed.contains(s)) {
            throw new SchedulerConfigException(key, "'" + s + "' is not supported; use one of " + allowed);
        }
        return s;
    }

    /** {@code trained_betas}: a list of numbers, or null. */
    double[] getDoubleArray(String key) {
        Object v = values.get(key);
        if (v == null) {
            return null;
        }
        if (v instanceof List<?> list) {
            double[] out = new double[list.size()];
            for (int i = 0; i < out.length; i++) {
                Object o = list.get(i);
                if (!(o instanceof Number n)) {
                    throw new SchedulerConfigException(key, "element " + i + " is not a number: " + describe(o));
                }
                out[i] = n.doubleValue();
            }
            return out;
        }
        if (v instanceof double[] d) {
            return d.clone();
        }
        if (v instanceof float[] f) {
            double[] out = new double[f.length];
            for (int i = 0; i < f.length; i++) {
                out[i] = f[i];
            }
            return out;
        }
        throw new SchedulerConfigException(key, "expected a list of numbers, got " + describe(v));
    }

    private static String describe(Object v) {
        return v == null ? "null" : v + " (" + v.getClass().getSimpleName() + ")";
    }
}
