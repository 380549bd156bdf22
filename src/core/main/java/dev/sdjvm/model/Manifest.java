package dev.sdjvm.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.errors.ModelLoadException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code compiled_models/sdjvm-manifest.json}, written by our export tools ({@code tools/}): per artifact the file,
 * the static batch (null = dynamic) and the input/output dtypes and shapes, plus the versions that produced it.
 * Optional: directories without one (AWS's own) are inspected instead.
 */
public record Manifest(String format, String target, String createdBy, String torch, String torchNeuronx,
                       String neuronxCc, Integer height, Integer width, Map<String, Artifact> artifacts) {

    /** Current format tag. */
    public static final String FORMAT = "sdjvm-manifest/1";
    /** File name inside {@code compiled_models/}. */
    public static final String FILE_NAME = "sdjvm-manifest.json";

    /** Largest image side a manifest may declare (pixels): 1024 latents at SD's VAE scale factor 8. */
    public static final int MAX_SIDE = 8192;
    /** Largest static batch a manifest may declare. */
    public static final int MAX_BATCH = 64;

    /** One tensor of an artifact's signature. */
    public record TensorSpec(String name, DType dtype, List<Long> shape) {
    }

    /**
     * One artifact.
     *
     * @param neff       the artifact's NEFF beside it (relative to {@code compiled_models/}), or null
     * @param neffSource where the tool took that NEFF from (e.g. {@code compiler_workdir/unet/graph.neff}), or null
     */
    public record Artifact(String file, Integer batch, List<TensorSpec> inputs, List<TensorSpec> outputs, String neff,
                           String neffSource) {
        /** An artifact without a NEFF file. */
        public Artifact(String file, Integer batch, List<TensorSpec> inputs, List<TensorSpec> outputs) {
            this(file, batch, inputs, outputs, null, null);
        }

        /** The dtype of the first floating-point input, if any. */
        public DType floatInputDType() {
            for (TensorSpec t : inputs) {
                if (t.dtype() != DType.INT64 && t.dtype() != DType.INT32) {
                    return t.dtype();
                }
            }
            return null;
        }
    }

    /** Reads and validates a manifest; every problem is a {@link ModelLoadException} naming the file and the key. */
    public static Manifest read(Path file) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readAllBytes(file));
        } catch (IOException e) {
            throw new ModelLoadException(file, "cannot read manifest: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new ModelLoadException(file, "manifest is not a JSON object");
        }
        String format = text(root, "format");
        if (!FORMAT.equals(format)) {
            throw new ModelLoadException(file, "unsupported manifest format '" + format + "' (expected " + FORMAT + ")");
        }
        JsonNode arts = root.get("artifacts");
        if (arts == null || !arts.isObject()) {
            throw new ModelLoadException(file, "missing object 'artifacts'");
        }
        Map<String, Artifact> map = new LinkedHashMap<>();
        for (var it = arts.fields(); it.hasNext(); ) {
            var e = it.next();
            String role = e.getKey();
            JsonNode a = e.getValue();
            String f = text(a, "file");
            if (f == null) {
                throw new ModelLoadException(file, "artifacts." + role + ".file is missing");
            }
            JsonNode b = a.get("batch");
            Integer batch = null;
            if (b != null && !b.isNull()) {
                if (!b.isIntegralNumber() || !b.canConvertToInt() || b.asInt() < 1 || b.asInt() > MAX_BATCH) {
                    throw new ModelLoadException(file, "artifacts." + role + ".batch must be an integer in 1.."
                            + MAX_BATCH + " or null, got " + b);
                }
                batch = b.asInt();
            }
            try {
                map.put(role, new Artifact(f, batch, tensors(a.get("inputs")), tensors(a.get("outputs")),
                        text(a, "neff"), text(a, "neff_source")));
            } catch (IllegalArgumentException ex) {
                throw new ModelLoadException(file, "artifacts." + role + ": " + ex.getMessage(), ex);
            }
        }
        return new Manifest(format, text(root, "target"), text(root, "created_by"), text(root, "torch"),
                text(root, "torch_neuronx"), text(root, "neuronx_cc"), pixels(file, root, "height"),
                pixels(file, root, "width"),
                Collections.unmodifiableMap(map));
    }

    private static List<TensorSpec> tensors(JsonNode arr) {
        List<TensorSpec> out = new ArrayList<>();
        if (arr == null || arr.isNull()) {
            return out;
        }
        if (!arr.isArray()) {
            throw new IllegalArgumentException("inputs/outputs must be arrays");
        }
        for (JsonNode t : arr) {
            List<Long> shape = new ArrayList<>();
            JsonNode s = t.get("shape");
            if (s != null && s.isArray()) {
                for (JsonNode d : s) {
                    shape.add(d.asLong());
                }
            }
            out.add(new TensorSpec(text(t, "name"), DType.parse(text(t, "dtype")), List.copyOf(shape)));
        }
        return List.copyOf(out);
    }

    private static String text(JsonNode n, String key) {
        JsonNode v = n.get(key);
        return v == null || v.isNull() ? null : v.asText();
    }

    /** An image side in pixels: null, or an integer in 8..{@value #MAX_SIDE} (checked before anything is allocated). */
    private static Integer pixels(Path file, JsonNode n, String key) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < 8 || v.asInt() > MAX_SIDE) {
            throw new ModelLoadException(file, key + " must be an integer in 8.." + MAX_SIDE + " (pixels), got " + v);
        }
        return v.asInt();
    }
}
