package dev.sdjvm.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.sdjvm.ModelInfo;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.model.ArtifactSpec;
import dev.sdjvm.model.Manifest;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.pipeline.DefaultModel;
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
        description = {"Shows what a model directory holds: the artifacts (file, size, input dtype, static batch, where "
                + "that was learnt), image size, scheduler config, manifest versions, and the backend that runs it.",
                "By default the model is loaded (with its warm-up), which finds dtype and batch of artifacts without "
                        + "a manifest; --no-load only reads the files."})
public final class InfoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", paramLabel = "DIR", description = "Model directory. Default: the embedded model.")
    Path model;

    @Option(names = "--json", description = "Machine-readable JSON output.")
    boolean json;

    @Option(names = "--no-load", description = "Do not load the artifacts into libtorch (dtype/batch only from a manifest).")
    boolean noLoad;

    @Option(names = "--verbose", description = "Log at INFO level.")
    boolean verbose;

    @Override
    public Integer call() throws IOException {
        Path dir = model != null ? model : DefaultModel.path();
        Map<String, Object> facts = noLoad ? inspect(dir) : load(dir);
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(facts));
        } else {
            printText(out, facts);
        }
        out.flush();
        return Main.OK;
    }

    /** Facts from the files only. */
    static Map<String, Object> inspect(Path dir) throws IOException {
        ModelDirectory md = ModelDirectory.open(dir);
        Map<String, Object> f = header(md.root(), md.height(), md.width(), md.schedulerConfig(), md.manifest());
        List<Map<String, Object>> arts = new ArrayList<>();
        long total = 0;
        for (var e : md.artifacts().entrySet()) {
            Manifest.Artifact a = md.manifest() == null ? null : md.manifest().artifacts().get(e.getKey());
            String dtype = a == null || a.floatInputDType() == null ? null : a.floatInputDType().manifestName();
            long size = Files.size(e.getValue());
            total += size;
            arts.add(artifact(e.getKey(), md.root(), e.getValue(), size, dtype, a == null ? null : a.batch(),
                    a == null ? "unknown (not loaded)" : "manifest"));
        }
        f.put("artifacts", arts);
        f.put("weights_bytes", total);
        f.put("model_hash", ModelHash.ofFiles(ModelHash.ROLES.stream().map(r -> md.artifacts().get(r)).toList()));
        if (dev.sdjvm.backend.neuron.NeuronPlatform.isNeuronCompiled(md)) {
            var platform = dev.sdjvm.backend.neuron.NeuronPlatform.detect();
            f.put("backend", "neuron (Neuron-compiled artifacts)" + (platform.available() ? ""
                    : "; not available here: " + platform.reason()));
        } else {
            f.put("backend", "cpu (libtorch; CPU-traced artifacts)");
        }
        f.put("loaded", false);
        return f;
    }

    /** Facts from loading the model. */
    static Map<String, Object> load(Path dir) throws IOException {
        try (StableDiffusion sd = StableDiffusion.load(dir)) {
            return facts(sd.info());
        }
    }

    /** Facts of a loaded model. */
    public static Map<String, Object> facts(ModelInfo info) throws IOException {
        Map<String, Object> f = header(info.root(), info.height(), info.width(), info.schedulerConfig(), info.manifest());
        List<Map<String, Object>> arts = new ArrayList<>();
        long total = 0;
        for (ArtifactSpec s : info.artifacts().values()) {
            long size = Files.size(s.file());
            total += size;
            arts.add(artifact(s.role(), info.root(), s.file(), size,
                    s.inputDType() == null ? null : s.inputDType().manifestName(), s.batch(), s.source()));
        }
        f.put("artifacts", arts);
        f.put("weights_bytes", total);
        f.put("model_hash", ModelHash.of(info));
        f.put("backend", info.backend().name().toLowerCase(Locale.ROOT));
        f.put("unet_replicas", info.unetReplicas());
        f.put("load_seconds", info.loadNanos() / 1e9);
        f.put("loaded", true);
        return f;
    }

    /** Sum of the artifact file sizes. */
    public static long weightBytes(ModelInfo info) throws IOException {
        long total = 0;
        for (ArtifactSpec s : info.artifacts().values()) {
            total += Files.size(s.file());
        }
        return total;
    }

    /** The UNet's input dtype ({@code float32}, {@code bfloat16}, ...): the model's precision. */
    public static String precision(ModelInfo info) {
        ArtifactSpec u = info.artifacts().get("unet");
        return u == null || u.inputDType() == null ? "unknown" : u.inputDType().manifestName();
    }

    /** Facts that are unknown are left out (text and JSON), never printed as null. */
    private static void putKnown(Map<String, Object> m, String key, Object value) {
        if (value != null) {
            m.put(key, value);
        }
    }

    private static Map<String, Object> header(Path root, int h, int w, Map<String, Object> sched, Manifest mf) {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("model", root.toString());
        f.put("height", h);
        f.put("width", w);
        putKnown(f, "scheduler_config_class", sched.get("_class_name"));
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
        return f;
    }

    private static Map<String, Object> artifact(String role, Path root, Path file, long size, String dtype,
                                                Integer batch, String source) {
        Map<String, Object> a = new LinkedHashMap<>();
        a.put("role", role);
        a.put("file", root.relativize(file).toString());
        a.put("bytes", size);
        putKnown(a, "dtype", dtype);
        a.put("batch", batch == null ? "dynamic" : batch);
        a.put("source", source);
        return a;
    }

    @SuppressWarnings("unchecked")
    private static void printText(PrintWriter out, Map<String, Object> f) {
        out.println("model:      " + f.get("model"));
        out.println("image size: " + f.get("width") + "x" + f.get("height") + " (width x height)");
        out.println("scheduler:  " + f.getOrDefault("scheduler_config_class", "(scheduler_config.json has no _class_name)")
                + " (scheduler_config.json; generate uses DPMSolverMultistepScheduler unless --scheduler says otherwise)");
        out.println("backend:    " + f.get("backend"));
        if (f.containsKey("unet_replicas")) {
            out.printf(Locale.ROOT, "loaded in:  %.2f s (UNet replicas: %s)%n", (Double) f.get("load_seconds"),
                    f.get("unet_replicas"));
        }
        Map<String, Object> m = (Map<String, Object>) f.get("manifest");
        if (m == null) {
            out.println("manifest:   none (AWS layout; facts found by inspecting the artifacts)");
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
        out.printf(Locale.ROOT, "  %-20s %-42s %12s %-9s %-8s %s%n", "ROLE", "FILE", "SIZE", "DTYPE", "BATCH", "SOURCE");
        for (Map<String, Object> a : (List<Map<String, Object>>) f.get("artifacts")) {
            out.printf(Locale.ROOT, "  %-20s %-42s %12s %-9s %-8s %s%n", a.get("role"), a.get("file"),
                    bytes((Long) a.get("bytes")), a.get("dtype") == null ? "?" : a.get("dtype"), a.get("batch"),
                    a.get("source"));
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
