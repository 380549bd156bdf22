package dev.sdjvm.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.sdjvm.ModelInfo;
import dev.sdjvm.StableDiffusion;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code sd info}: what a model directory holds. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = {"Shows what a model directory holds: the artifacts (file, size, input dtype, static batch, the "
                + "NeuronCores they run on, where that was learnt, the NEFF each carries and where it was found, their "
                + "tensors), image size, scheduler config, manifest versions, and the path that runs it (cpu: libtorch, "
                + "neuron: the NEFFs through libnrt).",
                "By default the model is loaded (with its warm-up), which finds dtype and batch of artifacts without "
                        + "a manifest and the NEFFs' tensors; --no-load only reads the files."})
public final class InfoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-m", "--model"}, paramLabel = "DIR", description = "Model directory. Default: the embedded model.")
    Path model;

    @Option(names = "--json", description = "Machine-readable JSON output.")
    boolean json;

    @Option(names = "--no-load", description = "Do not load the artifacts (dtype/batch only from a manifest, NEFFs located but not loaded).")
    boolean noLoad;

    @Option(names = "--verbose", description = "Log at INFO level.")
    boolean verbose;

    @Override
    public Integer call() throws IOException {
        Path dir = model != null ? model : StableDiffusion.defaultModelPath();
        Map<String, Object> facts;
        if (noLoad) {
            facts = facts(StableDiffusion.inspect(dir));
        } else {
            try (StableDiffusion sd = StableDiffusion.load(dir)) {
                facts = facts(sd.info());
            }
        }
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(facts));
        } else {
            printText(out, facts);
        }
        out.flush();
        return Main.OK;
    }

    /**
     * The facts of a model, loaded ({@link StableDiffusion#info()}) or not ({@link StableDiffusion#inspect(Path)}).
     *
     * @param info the model
     * @return the facts by name, in the order they are printed; unknown ones are left out
     * @throws IOException if an artifact cannot be read (sizes, hash)
     */
    public static Map<String, Object> facts(ModelInfo info) throws IOException {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("model", info.root().toString());
        f.put("height", info.height());
        f.put("width", info.width());
        putKnown(f, "layout", info.layout());
        f.put("family", info.family());
        f.put("family_evidence", info.familyEvidence());
        putKnown(f, "family_problem", info.familyProblem());
        f.put("default_scheduler", info.defaultScheduler());
        f.put("default_steps", info.defaultSteps());
        f.put("default_guidance_scale", info.defaultGuidanceScale());
        f.put("tasks", info.tasks());
        putKnown(f, "scheduler_config_class", info.schedulerConfig().get("_class_name"));
        ModelInfo.Manifest mf = info.manifest();
        if (mf != null) {
            Map<String, Object> m = new LinkedHashMap<>();
            putKnown(m, "format", mf.format());
            putKnown(m, "target", mf.target());
            putKnown(m, "created_by", mf.createdBy());
            putKnown(m, "torch", mf.torch());
            putKnown(m, "torch_neuronx", mf.torchNeuronx());
            putKnown(m, "neuronx_cc", mf.neuronxCc());
            f.put("manifest", m);
        }
        List<Map<String, Object>> arts = new ArrayList<>();
        long total = 0;
        for (ModelInfo.Artifact s : info.artifacts().values()) {
            long size = Files.size(s.file());
            total += size;
            Map<String, Object> a = new LinkedHashMap<>();
            a.put("role", s.role());
            a.put("file", info.root().relativize(s.file()).toString());
            a.put("bytes", size);
            putKnown(a, "dtype", s.dtype() == null ? null : s.dtype().torchName());
            if (s.batch() != null) {
                a.put("batch", s.batch());
            } else if (info.loaded() || s.source() == ModelInfo.Source.MANIFEST) {
                a.put("batch", "dynamic");  // known to take any batch; else unknown until loaded
            }
            putKnown(a, "device", s.device() == null ? null : s.device().toString());
            a.put("source", s.source() == ModelInfo.Source.UNKNOWN ? "unknown (not loaded)" : s.source().id());
            putKnown(a, "neff", s.neff());
            if (!s.inputs().isEmpty()) {
                a.put("inputs", s.inputs());
            }
            if (!s.outputs().isEmpty()) {
                a.put("outputs", s.outputs());
            }
            arts.add(a);
        }
        f.put("artifacts", arts);
        f.put("weights_bytes", total);
        f.put("model_hash", ModelHash.of(info));
        f.put("backend", info.backend().name().toLowerCase(Locale.ROOT));
        putKnown(f, "backend_detail", info.backendDetail());
        f.put("loaded", info.loaded());
        if (info.loaded()) {
            f.put("unet_replicas", info.unetReplicas());
            f.put("pipelines", info.pipelines());
            f.put("load_seconds", info.loadNanos() / 1e9);
        }
        return f;
    }

    /**
     * Sum of the artifact file sizes.
     *
     * @param info the model
     * @return bytes
     * @throws IOException if an artifact cannot be read
     */
    public static long weightBytes(ModelInfo info) throws IOException {
        long total = 0;
        for (ModelInfo.Artifact s : info.artifacts().values()) {
            total += Files.size(s.file());
        }
        return total;
    }

    /**
     * The UNet's input dtype ({@code float32}, {@code bfloat16}, ...): the model's precision.
     *
     * @param info the model
     * @return the dtype name, or {@code unknown}
     */
    public static String precision(ModelInfo info) {
        ModelInfo.Artifact u = info.artifacts().get("unet");
        return u == null || u.dtype() == null ? "unknown" : u.dtype().torchName();
    }

    /** Facts that are unknown are left out (text and JSON), never printed as null. */
    private static void putKnown(Map<String, Object> m, String key, Object value) {
        if (value != null) {
            m.put(key, value);
        }
    }

    @SuppressWarnings("unchecked")
    private static void printText(PrintWriter out, Map<String, Object> f) {
        out.println("model:      " + f.get("model"));
        out.println("layout:     " + f.getOrDefault("layout", "?")
                + ("optimum-neuron".equals(String.valueOf(f.get("layout")).split(" ")[0])
                ? " (the VAE decoder includes post_quant_conv)" : ""));
        out.println("family:     " + f.get("family") + " (" + f.get("family_evidence") + ")");
        if (f.containsKey("family_problem")) {
            out.println("            cannot run: " + f.get("family_problem"));
        }
        out.println("image size: " + f.get("width") + "x" + f.get("height") + " (width x height)");
        out.println("defaults:   " + f.get("default_steps") + " steps, guidance " + f.get("default_guidance_scale")
                + " (a request without --steps / --guidance runs these)");
        List<String> tasks = (List<String>) f.get("tasks");
        out.println("tasks:      " + (tasks.isEmpty() ? "none" : String.join(", ", tasks))
                + (tasks.contains("image-to-image") || tasks.contains("inpainting") || tasks.isEmpty() ? ""
                : " (image-to-image and inpainting need the VAE encoder, compiled_models/vae_encoder.pt)"));
        Object dflt = f.get("default_scheduler");
        out.println("scheduler:  " + f.getOrDefault("scheduler_config_class", "(scheduler_config.json has no _class_name)")
                + " (scheduler_config.json; generate uses " + ("config".equals(dflt) ? "it" : dflt)
                + " unless --scheduler says otherwise)");
        out.println("backend:    " + f.get("backend") + (f.containsKey("backend_detail") ? ": " + f.get("backend_detail") : "")
                + (Boolean.TRUE.equals(f.get("loaded")) ? "" : " (not loaded: the path a load would take)"));
        if (f.containsKey("unet_replicas")) {
            out.printf(Locale.ROOT, "loaded in:  %.2f s (UNet replicas: %s, pipelines: %s)%n", (Double) f.get("load_seconds"),
                    f.get("unet_replicas"), f.get("pipelines"));
        }
        Map<String, Object> m = (Map<String, Object>) f.get("manifest");
        if (m == null) {
            out.println("manifest:   none (facts found by inspecting the artifacts)");
        } else {
            List<String> parts = new ArrayList<>();
            for (String[] k : new String[][] {{"format", ""}, {"target", "target "}, {"created_by", "created by "},
                {"torch", "torch "}, {"torch_neuronx", "torch-neuronx "}, {"neuronx_cc", "neuronx-cc "}}) {
                if (m.containsKey(k[0])) {
                    parts.add(k[1] + m.get(k[0]));
                }
            }
            out.println("manifest:   " + String.join(", ", parts));
        }
        out.println("artifacts:");
        out.printf(Locale.ROOT, "  %-20s %-42s %12s %-9s %-8s %-8s %s%n", "ROLE", "FILE", "SIZE", "DTYPE", "BATCH",
                "DEVICE", "SOURCE");
        for (Map<String, Object> a : (List<Map<String, Object>>) f.get("artifacts")) {
            out.printf(Locale.ROOT, "  %-20s %-42s %12s %-9s %-8s %-8s %s%n", a.get("role"), a.get("file"),
                    bytes((Long) a.get("bytes")), a.getOrDefault("dtype", "?"), a.getOrDefault("batch", "?"),
                    a.getOrDefault("device", "-"), a.get("source"));
            if (a.containsKey("neff")) {
                out.println("      NEFF:    " + a.get("neff"));
            }
            if (a.containsKey("inputs")) {
                out.println("      inputs:  " + String.join(", ", (List<String>) a.get("inputs")));
            }
            if (a.containsKey("outputs")) {
                out.println("      outputs: " + String.join(", ", (List<String>) a.get("outputs")));
            }
        }
        out.println("weights:    " + bytes((Long) f.get("weights_bytes")) + " in total, model hash "
                + f.get("model_hash") + " (SHA-256 of the artifacts, as A1111's short hash)");
    }

    /** 1536 -&gt; "1.5 KiB". */
    public static String bytes(long b) {
        if (b < 1024) {
            return b + " B";
        }
        String[] u = {"KiB", "MiB", "GiB", "TiB"};
        double v = b;
        int i = -1;
        while (v >= 1024 && i < u.length - 1) {
            v /= 1024;
            i++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, u[i]);
    }
}
