package dev.sdjvm.scheduler;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.ModelLoadException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BiFunction;

/**
 * Scheduler factory: diffusers' {@code Cls.from_config(config, **overrides)} by class name or by a short alias.
 *
 * <table>
 * <caption>Names (case-insensitive)</caption>
 * <tr><th>name / alias</th><th>scheduler</th><th>settings applied before the overrides</th></tr>
 * <tr><td>DPMSolverMultistepScheduler, dpm++2m, dpmpp_2m, dpm</td><td>DPM-Solver++ 2M</td><td></td></tr>
 * <tr><td>dpm++2m-karras, dpmpp_2m_karras</td><td>DPM-Solver++ 2M</td><td>use_karras_sigmas=true</td></tr>
 * <tr><td>dpm++2m-sde, dpmpp_2m_sde</td><td>DPM-Solver++ 2M SDE</td><td>algorithm_type=sde-dpmsolver++</td></tr>
 * <tr><td>dpm++2m-sde-karras, dpmpp_2m_sde_karras</td><td>DPM-Solver++ 2M SDE</td>
 *     <td>algorithm_type=sde-dpmsolver++, use_karras_sigmas=true</td></tr>
 * <tr><td>dpm++3m, dpmpp_3m</td><td>DPM-Solver++ 3M</td><td>solver_order=3</td></tr>
 * <tr><td>EulerDiscreteScheduler, euler</td><td>Euler</td><td></td></tr>
 * <tr><td>euler-karras, euler_karras</td><td>Euler</td><td>use_karras_sigmas=true</td></tr>
 * <tr><td>EulerAncestralDiscreteScheduler, euler_a, euler-a, euler-ancestral</td><td>Euler ancestral</td><td></td></tr>
 * <tr><td>DDIMScheduler, ddim</td><td>DDIM</td><td></td></tr>
 * <tr><td>PNDMScheduler, pndm, plms</td><td>PNDM (PLMS, skip_prk_steps)</td><td>skip_prk_steps=true</td></tr>
 * <tr><td>LMSDiscreteScheduler, lms</td><td>LMS</td><td></td></tr>
 * <tr><td>lms-karras, lms_karras</td><td>LMS</td><td>use_karras_sigmas=true</td></tr>
 * <tr><td>UniPCMultistepScheduler, unipc, uni_pc</td><td>UniPC</td><td></td></tr>
 * <tr><td>unipc-karras, unipc_karras</td><td>UniPC</td><td>use_karras_sigmas=true</td></tr>
 * <tr><td>LCMScheduler, lcm</td><td>Latent Consistency Model (multi-step consistency sampling)</td><td></td></tr>
 * </table>
 */
public final class Schedulers {
    private record Entry(String className, Map<String, Object> preset) {
    }

    private static final Map<String, BiFunction<Map<String, Object>, Map<String, Object>, Scheduler>> CLASSES =
            new LinkedHashMap<>();
    private static final Map<String, Entry> NAMES = new LinkedHashMap<>();
    private static final List<Alias> ALIASES = new ArrayList<>();

    static {
        CLASSES.put(DPMSolverMultistepScheduler.NAME, DPMSolverMultistepScheduler::fromConfig);
        CLASSES.put(EulerDiscreteScheduler.NAME, EulerDiscreteScheduler::fromConfig);
        CLASSES.put(EulerAncestralDiscreteScheduler.NAME, EulerAncestralDiscreteScheduler::fromConfig);
        CLASSES.put(DDIMScheduler.NAME, DDIMScheduler::fromConfig);
        CLASSES.put(PNDMScheduler.NAME, PNDMScheduler::fromConfig);
        CLASSES.put(LMSDiscreteScheduler.NAME, LMSDiscreteScheduler::fromConfig);
        CLASSES.put(UniPCMultistepScheduler.NAME, UniPCMultistepScheduler::fromConfig);
        CLASSES.put(LCMScheduler.NAME, LCMScheduler::fromConfig);

        alias(DPMSolverMultistepScheduler.NAME, Map.of(), "dpm++2m", "dpmpp_2m", "dpmpp-2m", "dpm");
        alias(DPMSolverMultistepScheduler.NAME, Map.of("use_karras_sigmas", true), "dpm++2m-karras",
                "dpmpp_2m_karras", "dpmpp-2m-karras");
        alias(DPMSolverMultistepScheduler.NAME, Map.of("algorithm_type", "sde-dpmsolver++"), "dpm++2m-sde",
                "dpmpp_2m_sde", "dpmpp-2m-sde");
        alias(DPMSolverMultistepScheduler.NAME, Map.of("algorithm_type", "sde-dpmsolver++", "use_karras_sigmas",
                true), "dpm++2m-sde-karras", "dpmpp_2m_sde_karras", "dpmpp-2m-sde-karras");
        alias(DPMSolverMultistepScheduler.NAME, Map.of("solver_order", 3), "dpm++3m", "dpmpp_3m", "dpmpp-3m");
        alias(EulerDiscreteScheduler.NAME, Map.of(), "euler");
        alias(EulerDiscreteScheduler.NAME, Map.of("use_karras_sigmas", true), "euler-karras", "euler_karras");
        alias(EulerAncestralDiscreteScheduler.NAME, Map.of(), "euler_a", "euler-a", "euler-ancestral",
                "euler_ancestral");
        alias(DDIMScheduler.NAME, Map.of(), "ddim");
        alias(PNDMScheduler.NAME, Map.of("skip_prk_steps", true), "pndm", "plms");
        alias(LMSDiscreteScheduler.NAME, Map.of(), "lms");
        alias(LMSDiscreteScheduler.NAME, Map.of("use_karras_sigmas", true), "lms-karras", "lms_karras");
        alias(UniPCMultistepScheduler.NAME, Map.of(), "unipc", "uni_pc", "uni-pc");
        alias(UniPCMultistepScheduler.NAME, Map.of("use_karras_sigmas", true), "unipc-karras", "unipc_karras");
        alias(LCMScheduler.NAME, Map.of(), "lcm");
    }

    private static void alias(String className, Map<String, Object> preset, String... names) {
        for (String n : names) {
            NAMES.put(n.toLowerCase(Locale.ROOT), new Entry(className, preset));
        }
        ALIASES.add(new Alias(names[0], List.of(names).subList(1, names.length), className, preset));
    }

    /**
     * A short name for a scheduler and settings (see the class documentation).
     *
     * @param name      the name to show, e.g. {@code dpm++2m-karras}
     * @param spellings the other accepted spellings of it, e.g. {@code dpmpp_2m_karras}
     * @param className the diffusers class it creates
     * @param preset    the config it applies before the overrides, e.g. {@code use_karras_sigmas=true}
     */
    public record Alias(String name, List<String> spellings, String className, Map<String, Object> preset) {
        /**
         * An alias.
         *
         * @param name      the name to show
         * @param spellings the other accepted spellings (copied)
         * @param className the diffusers class it creates
         * @param preset    the config it applies (copied)
         */
        public Alias {
            spellings = List.copyOf(spellings);
            preset = Map.copyOf(preset);
        }
    }

    private Schedulers() {
    }

    /**
     * The scheduler named by the config's {@code _class_name} (e.g. {@code PNDMScheduler} in SD 2.1-base's
     * {@code scheduler_config.json}), configured like {@code Cls.from_config(config, **overrides)}.
     *
     * @param config    a {@code scheduler_config.json} as a map ({@link #readConfig})
     * @param overrides keys that replace the config's, or an empty map
     * @return a new scheduler
     * @throws SchedulerConfigException if {@code _class_name} is missing or not implemented, or a key is invalid
     */
    public static Scheduler fromConfig(Map<String, Object> config, Map<String, Object> overrides) {
        Object cls = config == null ? null : config.get("_class_name");
        if (!(cls instanceof String className)) {
            throw new SchedulerConfigException("_class_name", "the scheduler config has no _class_name; use "
                    + "Schedulers.create(name, ...) with one of " + names());
        }
        if (!CLASSES.containsKey(className)) {
            throw new SchedulerConfigException("_class_name", "'" + className + "' is not implemented; "
                    + "implemented: " + CLASSES.keySet());
        }
        return CLASSES.get(className).apply(config, overrides);
    }

    /**
     * The scheduler called {@code name} (a diffusers class name or an alias, case-insensitive; see the class
     * documentation), configured from {@code config} (typically the model's {@code scheduler_config.json}; its
     * {@code _class_name} is ignored), the alias' preset and {@code overrides}, in that order of precedence.
     *
     * @param name      a diffusers class name or an alias
     * @param config    a {@code scheduler_config.json} as a map ({@link #readConfig}), or null for diffusers' defaults
     * @param overrides keys that replace the config's, or an empty map
     * @return a new scheduler
     * @throws InvalidRequestException (field {@code scheduler}) for an unknown name, listing the valid ones
     * @throws SchedulerConfigException naming the key, for an invalid value or an override the class does not take
     */
    public static Scheduler create(String name, Map<String, Object> config, Map<String, Object> overrides) {
        if (name == null) {
            throw new InvalidRequestException("scheduler", "no scheduler name given; valid names: " + names());
        }
        Entry e = NAMES.get(name.toLowerCase(Locale.ROOT));
        if (e == null) {
            for (String cls : CLASSES.keySet()) {
                if (cls.equalsIgnoreCase(name)) {
                    e = new Entry(cls, Map.of());
                }
            }
        }
        if (e == null) {
            throw new InvalidRequestException("scheduler", "unknown scheduler '" + name + "'; valid names: " + names());
        }
        Map<String, Object> merged = new LinkedHashMap<>();
        if (config != null) {
            merged.putAll(config);
        }
        merged.putAll(e.preset());
        return CLASSES.get(e.className()).apply(merged, overrides);
    }

    /** {@return the aliases, one per scheduler and settings, with their other spellings} */
    public static List<Alias> aliases() {
        return Collections.unmodifiableList(ALIASES);
    }

    /** {@return the implemented diffusers class names} */
    public static List<String> classNames() {
        return List.copyOf(CLASSES.keySet());
    }

    /** {@return all accepted names: the diffusers class names, then the aliases} */
    public static List<String> names() {
        List<String> out = new ArrayList<>(CLASSES.keySet());
        out.addAll(NAMES.keySet());
        return Collections.unmodifiableList(out);
    }

    /**
     * Reads a {@code scheduler_config.json} into the map {@link #fromConfig} takes: JSON's values as plain Java
     * objects ({@code String}, {@code Boolean}, {@code Integer}/{@code Long}/{@code BigInteger}, {@code Double},
     * {@code List}, {@code Map}, null); {@code NaN} and {@code -Infinity}, as Python's json writes them, are
     * accepted. A config from elsewhere (a JSON library of the caller's choice, or built by hand) is passed as such a
     * map too.
     *
     * @param schedulerConfigJson the file
     * @return its keys and values
     * @throws ModelLoadException naming the file if it is missing, unreadable or not a JSON object
     */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> readConfig(Path schedulerConfigJson) {
        ObjectMapper om = JsonMapper.builder().enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();
        try {
            JsonNode node = om.readTree(Files.readAllBytes(schedulerConfigJson));
            if (node == null || !node.isObject()) {
                throw new ModelLoadException(schedulerConfigJson, "not a JSON object");
            }
            return om.convertValue(node, LinkedHashMap.class);
        } catch (NoSuchFileException ex) {
            throw new ModelLoadException(schedulerConfigJson, "file not found", ex);
        } catch (JacksonException ex) {
            throw new ModelLoadException(schedulerConfigJson, "invalid JSON: " + ex.getOriginalMessage(), ex);
        } catch (IOException ex) {
            throw new ModelLoadException(schedulerConfigJson, "cannot read: " + ex.getMessage(), ex);
        }
    }
}
