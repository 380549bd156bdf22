package dev.sdjvm.scheduler;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A scheduler config as {@code Cls.from_config(config, **overrides)} sees it: the parsed JSON merged with the
 * overrides, read with typed getters that name the key on a type error. Keys starting with {@code _} and keys
 * the target class does not take are ignored, as diffusers' {@code from_config} ignores them.
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
