package dev.sdjvm.backend.torch;

import dev.sdjvm.backend.HiddenStatesLayout;
import dev.sdjvm.backend.TensorBinding;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.DType;
import dev.sdjvm.model.Manifest;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.model.SdxlConfig;
import dev.sdjvm.model.UNetSignature;
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
    /** The UNet's arguments (SDXL: also text_embeds [B,P] and time_ids [B,6]; LCM: also timestep_cond). */
    private final UNetSignature signature;
    /** SDXL: the UNet also takes text_embeds [B,P] and time_ids [B,6]. */
    private final boolean sdxl;
    /** SDXL: P, the second text encoder's text_embeds width ({@link #conditioningHiddenSize}), else -1. */
    private int textEmbeds = -1;

    TorchArtifactProbe(ModelDirectory model) {
        this.model = model;
        this.signature = model.unetSignature();
        this.sdxl = signature == UNetSignature.SDXL;
    }

    /**
     * The width of the UNet's encoder_hidden_states: the text encoder's hidden size H, or for SDXL the two encoders'
     * penultimate hidden states side by side (H1 + H2); SDXL also learns P, the width of text_embeds, here.
     *
     * @param te  the text encoder
     * @param te2 the second text encoder (SDXL), or null
     */
    int conditioningHiddenSize(TorchModule te, TorchModule te2) {
        if (te2 == null) {
            return textEncoderHiddenSize(te);
        }
        HiddenStatesLayout l1 = layout(te, ArtifactRole.TEXT_ENCODER);
        HiddenStatesLayout l2 = layout(te2, ArtifactRole.TEXT_ENCODER_2);
        if (!l2.projection()) {
            throw new ModelLoadException(te2.file(), "text_encoder_2 returns (last_hidden_state, pooler_output, ...): "
                    + "SDXL's second encoder is CLIPTextModelWithProjection, (text_embeds, last_hidden_state, ...)");
        }
        textEmbeds = l2.pooledSize();
        return l1.hiddenSize() + l2.hiddenSize();
    }

    /** Runs an SDXL text encoder on [1,77] zero ids and reads the structure of its outputs. */
    private HiddenStatesLayout layout(TorchModule m, ArtifactRole role) {
        try (PointerScope s = new PointerScope()) {
            Tensor ids = Tensors.empty(DType.INT64, 1, TOKENS).zero_();
            List<Map.Entry<String, Tensor>> outs = forward(m, "int64 input_ids [1," + TOKENS + "]", ids);
            try {
                return HiddenStatesLayout.of(role, specs(outs), TOKENS);
            } catch (BackendException e) {
                throw new ModelLoadException(m.file(), e.getMessage(), e);
            }
        }
    }

    private int textEmbeds() {
        if (textEmbeds < 0) {
            throw new IllegalStateException("text_embeds width not probed yet");
        }
        return textEmbeds;
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
                + "," + hidden + "] (text_encoder hidden size" + (sdxl ? "s, both encoders), text_embeds [B," + textEmbeds
                + "], time_ids [B," + SdxlConfig.TIME_IDS + "]" : ")") + (signature == UNetSignature.LCM ? ", timestep_cond [B,"
                + timeCond() + "] (unet/config.json time_cond_proj_dim)" : "") + " in " + dtypes + ": "
                + (last == null ? "" : last.getMessage()), last);
    }

    private void runUnetOnce(TorchModule m, DType d, int b, int hidden) {
        try (PointerScope s = new PointerScope()) {
            Tensor x = Tensors.to(Tensors.empty(DType.FLOAT32, b, model.unetInChannels(), model.latentHeight(),
                    model.latentWidth()).zero_(), d);
            Tensor t = Tensors.to(Tensors.empty(DType.FLOAT32, b).fill_(new Scalar(999.0)), d);
            Tensor e = Tensors.to(Tensors.empty(DType.FLOAT32, b, TOKENS, hidden).zero_(), d);
            Tensor out = output(m, ArtifactRole.UNET, "noise_pred", sdxl
                    ? m.forwardOutputs(x, t, e, Tensors.to(Tensors.empty(DType.FLOAT32, b, textEmbeds()).zero_(), d),
                            Tensors.to(Tensors.empty(DType.FLOAT32, b, SdxlConfig.TIME_IDS).fill_(new Scalar(64.0)), d))
                    : signature == UNetSignature.LCM
                    ? m.forwardOutputs(x, t, e, Tensors.to(Tensors.empty(DType.FLOAT32, b, timeCond()).zero_(), d))
                    : m.forwardOutputs(x, t, e));
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
        Tensor x = Tensors.normal(1, d, 1, model.unetInChannels(), model.latentHeight(), model.latentWidth());
        Tensor t = Tensors.to(Tensors.empty(DType.FLOAT32, 1).fill_(new Scalar(500.0)), d);
        Tensor e = Tensors.normal(2, d, 1, TOKENS, hidden);
        if (sdxl) {
            return new Tensor[] {x, t, e, Tensors.normal(5, d, 1, textEmbeds()),
                Tensors.to(Tensors.empty(DType.FLOAT32, 1, SdxlConfig.TIME_IDS).fill_(new Scalar((double) model.height())),
                        d)};
        }
        return signature == UNetSignature.LCM ? new Tensor[] {x, t, e, Tensors.normal(5, d, 1, timeCond())} : new Tensor[] {x, t, e};
    }

    /** {@return unet/config.json time_cond_proj_dim (the LCM UNet's fourth input, timestep_cond), or 0} */
    private int timeCond() {
        Integer d = model.family().timeCondProjDim();
        return d == null ? 0 : d;
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
        List<TensorSpec> specs = specs(outs);
        try {
            return outs.get(TensorBinding.output(role, specs, name)).getValue();
        } catch (BackendException e) {
            throw new ModelLoadException(m.file(), e.getMessage(), e);
        }
    }

    private static List<TensorSpec> specs(List<Map.Entry<String, Tensor>> outs) {
        List<TensorSpec> specs = new ArrayList<>(outs.size());
        for (Map.Entry<String, Tensor> e : outs) {
            specs.add(new TensorSpec(e.getKey(), TorchModule.toDType(e.getValue().scalar_type()), Tensors.shape(e.getValue())));
        }
        return specs;
    }

    private static List<Map.Entry<String, Tensor>> forward(TorchModule m, String what, Tensor... in) {
        try {
            return m.forwardOutputs(in);
        } catch (BackendException e) {
            throw new ModelLoadException(m.file(), m.role() + " does not accept " + what + ": " + e.getMessage(), e);
        }
    }

    /**
     * The dtype the UNet takes its timestep in: an integer dtype when the manifest declares one (a UNet traced with an
     * integer example timestep, written as the schedule's integer as diffusers passes it), else the UNet's float dtype
     * (AWS's wrapper and our trace tool pass {@code t} in the UNet's dtype; a trace with an integer example accepts a
     * float too, its graph casts with {@code .float()}).
     */
    private DType timestepDType(DType unetDType) {
        Manifest mf = model.manifest();
        Manifest.Artifact a = mf == null ? null : mf.artifacts().get(ArtifactRole.UNET.id());
        if (a != null) {
            List<Manifest.TensorSpec> ins = a.inputs();
            int k = signature.inputs().indexOf(UNetSignature.TIMESTEP);
            Manifest.TensorSpec t = ins.stream().filter(x -> "timestep".equals(x.name())).findFirst()
                    .orElse(ins.size() > k ? ins.get(k) : null);
            if (t != null && (t.dtype() == DType.INT64 || t.dtype() == DType.INT32)) {
                return t.dtype();
            }
        }
        return unetDType;
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
            case TEXT_ENCODER, TEXT_ENCODER_2 -> new long[][] {{b, TOKENS}};
            case UNET -> sdxl
                    ? new long[][] {{b, model.unetInChannels(), lh, lw}, {b}, {b, TOKENS, hidden > 0 ? hidden : -1},
                        {b, textEmbeds >= 0 ? textEmbeds : -1}, {b, SdxlConfig.TIME_IDS}}
                    : signature == UNetSignature.LCM
                    ? new long[][] {{b, model.unetInChannels(), lh, lw}, {b}, {b, TOKENS, hidden > 0 ? hidden : -1},
                        {b, timeCond()}}
                    : new long[][] {{b, model.unetInChannels(), lh, lw}, {b}, {b, TOKENS, hidden > 0 ? hidden : -1}};
            case VAE_POST_QUANT_CONV, VAE_DECODER -> new long[][] {{b, c, lh, lw}};
            case VAE_ENCODER -> new long[][] {{b, 3, f.batch() == null ? -1 : model.height(),
                    f.batch() == null ? -1 : model.width()}};
        };
        List<TensorSpec> specs = new ArrayList<>();
        for (int i = 0; i < shapes.length; i++) {
            DType di = role == ArtifactRole.TEXT_ENCODER || role == ArtifactRole.TEXT_ENCODER_2 ? DType.INT64 : d;
            String name = role.inputs(signature).get(i);
            if (role == ArtifactRole.UNET && name.equals(UNetSignature.TIMESTEP)) {
                di = timestepDType(d);
            }
            specs.add(new TensorSpec(name, di, shapes[i]));
        }
        return List.copyOf(specs);
    }
}
