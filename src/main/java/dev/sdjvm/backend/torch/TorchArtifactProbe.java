package dev.sdjvm.backend.torch;

import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.DType;
import dev.sdjvm.model.Manifest;
import dev.sdjvm.model.ModelDirectory;
import java.util.Arrays;
import java.util.List;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

/**
 * Load-time facts about TorchScript artifacts: the dtype their floating inputs take and their batch (from our tools'
 * manifest, else the module's parameters, else by running them), and checks that the four fit together and fit the
 * model directory (text encoder [1,77] ids -&gt; [1,77,H]; UNet sample/timestep/hidden states; VAE latents -&gt; image).
 */
final class TorchArtifactProbe {
    /** CLIP's context length: the text encoder takes [B, 77] token ids. */
    static final int TOKENS = 77;

    /** What is known of one artifact. */
    record Facts(DType dtype, Integer batch, String source) {
    }

    private final ModelDirectory model;

    TorchArtifactProbe(ModelDirectory model) {
        this.model = model;
    }

    /** Facts from the manifest or the module's parameters; dtype null when neither says (Neuron-compiled modules). */
    Facts facts(String role, TorchModule m) {
        Manifest mf = model.manifest();
        if (mf != null && mf.artifacts().containsKey(role)) {
            Manifest.Artifact a = mf.artifacts().get(role);
            // the text encoder takes int64 ids: report the dtype it computes in (its parameters)
            DType d = a.floatInputDType() != null ? a.floatInputDType() : m.parameterDType().orElse(null);
            return new Facts(d, a.batch(), "manifest");
        }
        var d = m.parameterDType();
        if (d.isPresent()) {
            return new Facts(d.get(), null, "parameters");  // weights in the graph: traced for CPU, any batch
        }
        return new Facts(null, null, "probe");
    }

    /** Runs the text encoder on [1,77] ids and returns its hidden size H (last_hidden_state [1,77,H]). */
    int textEncoderHiddenSize(TorchModule m) {
        try (PointerScope s = new PointerScope()) {
            Tensor ids = Tensors.empty(DType.INT64, 1, TOKENS).zero_();
            var outs = forward(m, "int64 input_ids [1," + TOKENS + "]", ids);
            Tensor out = outs.stream().filter(e -> "last_hidden_state".equals(e.getKey())).map(java.util.Map.Entry::getValue)
                    .findFirst().orElse(outs.get(0).getValue());
            long[] sh = Tensors.shape(out);
            if (sh.length != 3 || sh[0] != 1 || sh[1] != TOKENS) {
                throw new ModelLoadException(m.file(), "text_encoder returned " + Arrays.toString(sh)
                        + ", expected last_hidden_state [1," + TOKENS + ",H]");
            }
            return Math.toIntExact(sh[2]);
        }
    }

    /** Finds the UNet's dtype and batch by running it, and checks that it fits the text encoder and the latents. */
    Facts probeUnet(TorchModule m, Facts known, int hidden) {
        List<DType> dtypes = known.dtype() != null ? List.of(known.dtype())
                : List.of(DType.BFLOAT16, DType.FLOAT32);  // AWS compiles the UNet in bf16
        BackendException last = null;
        for (DType d : dtypes) {
            try {
                runUnetOnce(m, d, known.batch() != null ? known.batch() : 1, hidden);
            } catch (BackendException e) {
                last = e;
                continue;
            }
            Integer batch = known.batch();
            if (batch == null && "probe".equals(known.source())) {
                // no weights in the graph (e.g. Neuron-compiled): static shapes are likely; try batch 2
                try {
                    runUnetOnce(m, d, 2, hidden);
                } catch (BackendException e) {
                    batch = 1;
                }
            }
            return new Facts(d, batch, known.source());
        }
        throw new ModelLoadException(m.file(), "unet does not accept sample [B," + model.latentChannels() + ","
                + model.latentHeight() + "," + model.latentWidth() + "], timestep [B], encoder_hidden_states [B," + TOKENS
                + "," + hidden + "] (text_encoder hidden size) in " + dtypes + ": " + (last == null ? "" : last.getMessage()), last);
    }

    private void runUnetOnce(TorchModule m, DType d, int b, int hidden) {
        try (PointerScope s = new PointerScope()) {
            Tensor x = Tensors.to(Tensors.empty(DType.FLOAT32, b, model.latentChannels(), model.latentHeight(),
                    model.latentWidth()).zero_(), d);
            Tensor t = Tensors.to(Tensors.empty(DType.FLOAT32, b).fill_(new Scalar(999.0)), d);
            Tensor e = Tensors.to(Tensors.empty(DType.FLOAT32, b, TOKENS, hidden).zero_(), d);
            Tensor out = m.forwardOutputs(x, t, e).get(0).getValue();
            if (!Arrays.equals(Tensors.shape(out), Tensors.shape(x))) {
                throw new ModelLoadException(m.file(), "unet returned " + Tensors.shapeString(out) + " for a sample "
                        + Tensors.shapeString(x));
            }
        }
    }

    /** Seeded normal UNet inputs at the model's latent size, batch 1 (for timing rewrites). */
    Tensor[] unetInputs(DType d, int hidden) {
        return new Tensor[] {
            Tensors.normal(1, d, 1, model.latentChannels(), model.latentHeight(), model.latentWidth()),
            Tensors.to(Tensors.empty(DType.FLOAT32, 1).fill_(new Scalar(500.0)), d),
            Tensors.normal(2, d, 1, TOKENS, hidden)};
    }

    /** Seeded normal latents at the model's latent size, batch 1 (for timing rewrites of the VAE artifacts). */
    Tensor[] latentInputs(DType d) {
        return new Tensor[] {Tensors.normal(3, d, 1, model.latentChannels(), model.latentHeight(), model.latentWidth())};
    }

    /** Runs post_quant_conv and the decoder on zero latents and checks the shapes against the model directory. */
    void checkVae(TorchModule pqc, DType pqcType, TorchModule decoder, DType decType) {
        try (PointerScope s = new PointerScope()) {
            long[] lat = {1, model.latentChannels(), model.latentHeight(), model.latentWidth()};
            Tensor z = Tensors.to(Tensors.empty(DType.FLOAT32, lat).zero_(), pqcType);
            Tensor q = forward(pqc, "latents " + Arrays.toString(lat), z).get(0).getValue();
            if (!Arrays.equals(Tensors.shape(q), lat)) {
                throw new ModelLoadException(pqc.file(), "vae_post_quant_conv returned " + Tensors.shapeString(q)
                        + ", expected " + Arrays.toString(lat));
            }
            Tensor img = forward(decoder, "latents " + Arrays.toString(lat), Tensors.to(q, decType)).get(0).getValue();
            long[] expect = {1, 3, model.height(), model.width()};
            if (!Arrays.equals(Tensors.shape(img), expect)) {
                throw new ModelLoadException(decoder.file(), "vae_decoder returned " + Tensors.shapeString(img)
                        + ", expected " + Arrays.toString(expect) + " (vae/config.json block_out_channels gives scale "
                        + model.vaeScaleFactor() + ")");
            }
        }
    }

    private static List<java.util.Map.Entry<String, Tensor>> forward(TorchModule m, String what, Tensor... in) {
        try {
            return m.forwardOutputs(in);
        } catch (BackendException e) {
            throw new ModelLoadException(m.file(), m.role() + " does not accept " + what + ": " + e.getMessage(), e);
        }
    }

    /** The input specs of an artifact: role-specific names, the dtype found, the static batch or -1 (dynamic). */
    List<TensorSpec> inputs(String role, Facts f, int hidden) {
        DType d = f.dtype() == null ? DType.FLOAT32 : f.dtype();
        long b = f.batch() == null ? -1 : f.batch();
        // static-batch artifacts are compiled for the model's latent size; CPU traces take any size
        long lh = f.batch() == null ? -1 : model.latentHeight();
        long lw = f.batch() == null ? -1 : model.latentWidth();
        long c = model.latentChannels();
        return switch (role) {
            case "text_encoder" -> List.of(new TensorSpec("input_ids", DType.INT64, new long[] {b, TOKENS}));
            case "unet" -> List.of(new TensorSpec("sample", d, new long[] {b, c, lh, lw}),
                    new TensorSpec("timestep", d, new long[] {b}),
                    new TensorSpec("encoder_hidden_states", d, new long[] {b, TOKENS, hidden > 0 ? hidden : -1}));
            default -> List.of(new TensorSpec("latents", d, new long[] {b, c, lh, lw}));
        };
    }
}
