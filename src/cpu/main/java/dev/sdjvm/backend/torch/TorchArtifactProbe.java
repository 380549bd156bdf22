package dev.sdjvm.backend.torch;

import dev.sdjvm.backend.TensorBinding;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.DType;
import dev.sdjvm.model.Manifest;
import dev.sdjvm.model.ModelDirectory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;

/**
 * Load-time facts about TorchScript artifacts: the dtype their floating inputs take and their batch (from our tools'
 * manifest, else the module's parameters, else by running them), and checks that they fit together and fit the
 * model directory (text encoder [1,77] ids -&gt; [1,77,H]; UNet sample/timestep/hidden states; VAE latents -&gt; image;
 * VAE encoder image -&gt; moments). Outputs are found by name ({@link TensorBinding}), their shapes checked.
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
    Facts facts(ArtifactRole role, TorchModule m) {
        Manifest mf = model.manifest();
        if (mf != null && mf.artifacts().containsKey(role.id())) {
            Manifest.Artifact a = mf.artifacts().get(role.id());
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
            Tensor out = output(m, ArtifactRole.TEXT_ENCODER, "last_hidden_state",
                    forward(m, "int64 input_ids [1," + TOKENS + "]", ids));
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
        throw new ModelLoadException(m.file(), "unet does not accept sample [B," + model.unetInChannels() + ","
                + model.latentHeight() + "," + model.latentWidth() + "], timestep [B], encoder_hidden_states [B," + TOKENS
                + "," + hidden + "] (text_encoder hidden size) in " + dtypes + ": " + (last == null ? "" : last.getMessage()), last);
    }

    private void runUnetOnce(TorchModule m, DType d, int b, int hidden) {
        try (PointerScope s = new PointerScope()) {
            Tensor x = Tensors.to(Tensors.empty(DType.FLOAT32, b, model.unetInChannels(), model.latentHeight(),
                    model.latentWidth()).zero_(), d);
            Tensor t = Tensors.to(Tensors.empty(DType.FLOAT32, b).fill_(new Scalar(999.0)), d);
            Tensor e = Tensors.to(Tensors.empty(DType.FLOAT32, b, TOKENS, hidden).zero_(), d);
            Tensor out = output(m, ArtifactRole.UNET, "noise_pred", m.forwardOutputs(x, t, e));
            // the noise prediction has the latents' channels (an inpainting UNet's sample has more)
            long[] expect = {b, model.latentChannels(), model.latentHeight(), model.latentWidth()};
            if (!Arrays.equals(Tensors.shape(out), expect)) {
                throw new ModelLoadException(m.file(), "unet returned " + Tensors.shapeString(out) + " for a sample "
                        + Tensors.shapeString(x) + "; expected " + Arrays.toString(expect));
            }
        }
    }

    /** Seeded normal UNet inputs at the model's latent size, batch 1 (for timing rewrites). */
    Tensor[] unetInputs(DType d, int hidden) {
        return new Tensor[] {
            Tensors.normal(1, d, 1, model.unetInChannels(), model.latentHeight(), model.latentWidth()),
            Tensors.to(Tensors.empty(DType.FLOAT32, 1).fill_(new Scalar(500.0)), d),
            Tensors.normal(2, d, 1, TOKENS, hidden)};
    }

    /** Seeded normal latents at the model's latent size, batch 1 (for timing rewrites of the VAE artifacts). */
    Tensor[] latentInputs(DType d) {
        return new Tensor[] {Tensors.normal(3, d, 1, model.latentChannels(), model.latentHeight(), model.latentWidth())};
    }

    /** A seeded normal image at the model's size, batch 1 (for timing rewrites of the VAE encoder). */
    Tensor[] imageInputs(DType d) {
        return new Tensor[] {Tensors.normal(4, d, 1, 3, model.height(), model.width())};
    }

    /** Runs post_quant_conv and the decoder on zero latents and checks the shapes against the model directory. */
    void checkVae(TorchModule pqc, DType pqcType, TorchModule decoder, DType decType) {
        try (PointerScope s = new PointerScope()) {
            long[] lat = {1, model.latentChannels(), model.latentHeight(), model.latentWidth()};
            Tensor z = Tensors.to(Tensors.empty(DType.FLOAT32, lat).zero_(), pqcType);
            Tensor q = output(pqc, ArtifactRole.VAE_POST_QUANT_CONV, "latents", forward(pqc, "latents " + Arrays.toString(lat), z));
            if (!Arrays.equals(Tensors.shape(q), lat)) {
                throw new ModelLoadException(pqc.file(), "vae_post_quant_conv returned " + Tensors.shapeString(q)
                        + ", expected " + Arrays.toString(lat));
            }
            Tensor img = output(decoder, ArtifactRole.VAE_DECODER, "image",
                    forward(decoder, "latents " + Arrays.toString(lat), Tensors.to(q, decType)));
            long[] expect = {1, 3, model.height(), model.width()};
            if (!Arrays.equals(Tensors.shape(img), expect)) {
                throw new ModelLoadException(decoder.file(), "vae_decoder returned " + Tensors.shapeString(img)
                        + ", expected " + Arrays.toString(expect) + " (vae/config.json block_out_channels gives scale "
                        + model.vaeScaleFactor() + ")");
            }
        }
    }

    /** Runs the VAE encoder on a zero image and checks its moments [1, 2 x latent channels, h, w] against the model directory. */
    void checkEncoder(TorchModule encoder, DType type) {
        try (PointerScope s = new PointerScope()) {
            long[] img = {1, 3, model.height(), model.width()};
            Tensor x = Tensors.to(Tensors.empty(DType.FLOAT32, img).zero_(), type);
            Tensor moments = output(encoder, ArtifactRole.VAE_ENCODER, "latent_parameters",
                    forward(encoder, "an image " + Arrays.toString(img), x));
            long[] expect = {1, 2L * model.latentChannels(), model.latentHeight(), model.latentWidth()};
            if (!Arrays.equals(Tensors.shape(moments), expect)) {
                throw new ModelLoadException(encoder.file(), "vae_encoder returned " + Tensors.shapeString(moments)
                        + ", expected the latent distribution's parameters (mean, logvar) " + Arrays.toString(expect));
            }
        }
    }

    /** The output {@code name} of a role's contract among a module's outputs ({@link TensorBinding}). */
    private static Tensor output(TorchModule m, ArtifactRole role, String name, List<Map.Entry<String, Tensor>> outs) {
        List<TensorSpec> specs = new ArrayList<>(outs.size());
        for (Map.Entry<String, Tensor> e : outs) {
            specs.add(new TensorSpec(e.getKey(), TorchModule.toDType(e.getValue().scalar_type()), Tensors.shape(e.getValue())));
        }
        try {
            return outs.get(TensorBinding.output(role, specs, name)).getValue();
        } catch (BackendException e) {
            throw new ModelLoadException(m.file(), e.getMessage(), e);
        }
    }

    private static List<Map.Entry<String, Tensor>> forward(TorchModule m, String what, Tensor... in) {
        try {
            return m.forwardOutputs(in);
        } catch (BackendException e) {
            throw new ModelLoadException(m.file(), m.role() + " does not accept " + what + ": " + e.getMessage(), e);
        }
    }

    /** The input specs of an artifact: its role's input names, the dtype found, the static batch or -1 (dynamic). */
    List<TensorSpec> inputs(ArtifactRole role, Facts f, int hidden) {
        DType d = f.dtype() == null ? DType.FLOAT32 : f.dtype();
        long b = f.batch() == null ? -1 : f.batch();
        // static-batch artifacts are compiled for the model's latent size; CPU traces take any size
        long lh = f.batch() == null ? -1 : model.latentHeight();
        long lw = f.batch() == null ? -1 : model.latentWidth();
        long c = model.latentChannels();
        long[][] shapes = switch (role) {
            case TEXT_ENCODER -> new long[][] {{b, TOKENS}};
            case UNET -> new long[][] {{b, model.unetInChannels(), lh, lw}, {b}, {b, TOKENS, hidden > 0 ? hidden : -1}};
            case VAE_POST_QUANT_CONV, VAE_DECODER -> new long[][] {{b, c, lh, lw}};
            case VAE_ENCODER -> new long[][] {{b, 3, f.batch() == null ? -1 : model.height(),
                    f.batch() == null ? -1 : model.width()}};
        };
        List<TensorSpec> specs = new ArrayList<>();
        for (int i = 0; i < shapes.length; i++) {
            specs.add(new TensorSpec(role.inputs().get(i), role == ArtifactRole.TEXT_ENCODER ? DType.INT64 : d, shapes[i]));
        }
        return List.copyOf(specs);
    }
}
