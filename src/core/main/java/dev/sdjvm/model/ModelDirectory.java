package dev.sdjvm.model;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.scheduler.DPMSolverMultistepScheduler;
import dev.sdjvm.scheduler.Schedulers;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A Stable Diffusion model directory in the layout AWS's Inferentia2 deployment writes ({@code sd2_512_root}):
 * <pre>
 * compiled_models/text_encoder.pt  unet.pt  vae_decoder.pt  vae_post_quant_conv.pt  [vae_encoder.pt]  [sdjvm-manifest.json]
 * model_index.json  scheduler/scheduler_config.json  tokenizer/{vocab.json,merges.txt,...}
 * text_encoder/config.json  unet/config.json  vae/config.json
 * </pre>
 * or the layout {@code optimum-cli export neuron --task stable-diffusion} writes ({@link ModelLayout#OPTIMUM_NEURON}):
 * <pre>
 * model_index.json  text_encoder/{model.neuron,config.json}  unet/{model.neuron,config.json}
 * vae_decoder/{model.neuron,config.json}  [vae_encoder/{model.neuron,config.json}]  tokenizer/  scheduler/
 * </pre>
 * whose {@code vae_decoder} is diffusers' {@code vae.decode} and so includes post_quant_conv (there is no
 * post_quant_conv artifact), whose VAE config is {@code vae_decoder/config.json} and whose compiled latent size is
 * {@code unet/config.json}'s {@code neuron.static_height/static_width}. An export whose weights are separate from its
 * NEFFs ({@code neuron.inline_weights_to_neff: false}, optimum-cli's default) is refused with the re-export command.
 *
 * In the first layout, an artifact missing from {@code compiled_models/} is looked for where AWS's SDXL sample saves it,
 * {@code <role>/model.pt} (e.g. {@code unet/model.pt} beside {@code unet/config.json}). An SDXL model
 * ({@code model_index.json} {@code StableDiffusionXLPipeline}) also has {@code text_encoder_2} and {@code tokenizer_2/}
 * ({@link SdxlConfig}).
 * The artifacts are the roles of {@link ArtifactRole}: the required ones must exist, optional ones (the VAE encoder)
 * are used when present. Reading it validates the layout and the configs the pipeline needs; it loads no native code.
 *
 * @param root            the directory
 * @param tokenizerDir    {@code tokenizer/}
 * @param schedulerConfig {@code scheduler/scheduler_config.json} as parsed JSON (diffusers key names)
 * @param scalingFactor   {@code vae/config.json} {@code scaling_factor} (0.18215 for SD 2.x)
 * @param vaeScaleFactor  pixels per latent: 2^(len(vae block_out_channels)-1), 8 for SD
 * @param latentChannels  {@code vae/config.json} {@code latent_channels} (4): the channels of the latents the
 *                        scheduler denoises, the VAE decodes and the UNet predicts
 * @param unetInChannels  {@code unet/config.json} {@code in_channels}: the latent channels (4), or, for an inpainting
 *                        UNet, the latents + the mask + the masked image's latents (9)
 * @param unetDownFactor  how much the UNet downsamples its latents: 2^(len(unet block_out_channels)-1) (8 for SD); a
 *                        traced UNet takes only latent sizes that are multiples of it
 * @param latentHeight    latent height (manifest, else unet {@code sample_size})
 * @param latentWidth     latent width
 * @param manifest        our export tools' manifest, or null
 * @param artifacts       role -&gt; file: every required role of {@link ArtifactRole}, then the optional ones present
 * @param layout          which layout the directory has
 * @param family          the model family, from {@code model_index.json}, the UNet, scheduler and text encoder
 *                        configs ({@link FamilyDetection})
 */
public record ModelDirectory(Path root, Path tokenizerDir, Map<String, Object> schedulerConfig, double scalingFactor,
                             int vaeScaleFactor, int latentChannels, int unetInChannels, int unetDownFactor,
                             int latentHeight,
                             int latentWidth,
                             Manifest manifest, Map<ArtifactRole, Path> artifacts, ModelLayout layout,
                             FamilyDetection family) {

    /** optimum-neuron's file name of each compiled component. */
    public static final String OPTIMUM_FILE_NAME = "model.neuron";

    /**
     * {@return the arguments the model's UNet takes ({@link UNetSignature#of})}
     *
     * @throws dev.sdjvm.errors.ModelLoadException for a UNet no pipeline here can call as diffusers does
     */
    public UNetSignature unetSignature() {
        return UNetSignature.of(family, SdxlConfig.isSdxl(root), root.resolve("unet").resolve("config.json"));
    }

    /** {@return true when the VAE decoder artifact includes post_quant_conv (no separate artifact for it)} */
    public boolean decoderIncludesPostQuantConv() {
        return !artifacts.containsKey(ArtifactRole.VAE_POST_QUANT_CONV);
    }

    /**
     * The artifacts of an optimum-neuron export, in role order. Each component's config.json must say its weights are
     * inside its NEFF: with {@code inline_weights_to_neff: false} the NEFF takes every weight as an extra input,
     * which torch-neuronx feeds from the TorchScript module in an order no public source documents.
     */
    private static void openOptimumArtifacts(Path root, Map<ArtifactRole, Path> artifacts) {
        if (!Files.isRegularFile(root.resolve("model_index.json"))) {
            throw new ModelLoadException(root.resolve("model_index.json"), "missing: an optimum-neuron export has "
                    + "model_index.json beside unet/" + OPTIMUM_FILE_NAME);
        }
        for (ArtifactRole role : ArtifactRole.values()) {
            String component = role.optimumComponent().orElse(null);
            if (component == null) {
                continue;  // post_quant_conv: inside the VAE decoder
            }
            Path f = root.resolve(component).resolve(OPTIMUM_FILE_NAME);
            if (!Files.isRegularFile(f)) {
                if (role.required()) {
                    throw new ModelLoadException(f, role + " artifact not found (optimum-neuron export)");
                }
                continue;
            }
            Path config = root.resolve(component).resolve("config.json");
            JsonNode inline = readTree(config).path("neuron").path("inline_weights_to_neff");
            if (inline.isBoolean() && !inline.booleanValue()) {
                throw new ModelLoadException(config, "optimum-neuron exported " + component + " with its weights "
                        + "separate from the NEFF (neuron.inline_weights_to_neff = false, optimum-cli's default): that "
                        + "NEFF takes every weight as an extra input, in an order torch-neuronx does not document, so "
                        + "it cannot run here. Re-export with the weights inside the NEFFs: optimum-cli export neuron "
                        + "--inline-weights-neff ... (docs/neuron.md)");
            }
            artifacts.put(role, f);
        }
    }

    /** The diffusers default {@code AutoencoderKL.scaling_factor}. */
    public static final double DEFAULT_SCALING_FACTOR = 0.18215;

    /**
     * The file of a role's artifact.
     *
     * @param role a role the model has (every required one)
     * @return the file
     * @throws IllegalArgumentException for an optional role the model does not have ({@link #has})
     */
    public Path artifact(ArtifactRole role) {
        Path p = artifacts.get(role);
        if (p == null) {
            throw new IllegalArgumentException(root + " has no " + role + " artifact");
        }
        return p;
    }

    /** {@return true when the model has the artifact of {@code role} (always, for a required role)} */
    public boolean has(ArtifactRole role) {
        return artifacts.containsKey(role);
    }

    /** {@return true when the UNet takes the inpainting input: latents, mask and masked-image latents (9 channels)} */
    public boolean inpaintingUnet() {
        return unetInChannels == 2 * latentChannels + 1;
    }

    /** Image height in pixels. */
    public int height() {
        return latentHeight * vaeScaleFactor;
    }

    /** Image width in pixels. */
    public int width() {
        return latentWidth * vaeScaleFactor;
    }

    /** Largest latent side accepted from a config or manifest: 1024 latents = 8192 pixels at SD's VAE scale 8. */
    public static final int MAX_LATENT_SIDE = 1024;

    /**
     * The scheduler config is checked when the model is read, so a bad value fails the load (and the server's
     * /ping) rather than every request: it must configure the default scheduler (DPMSolverMultistepScheduler, as AWS's
     * deployment) and, when it names one this library implements, its own {@code _class_name}.
     */
    private static void checkSchedulerConfig(Path file, Map<String, Object> config) {
        try {
            Schedulers.create(DPMSolverMultistepScheduler.NAME, config, Map.of());
            Object cls = config.get("_class_name");
            if (cls instanceof String name && Schedulers.names().contains(name)) {
                Schedulers.fromConfig(config, Map.of());
            }
        } catch (InvalidRequestException e) {
            throw new ModelLoadException(file, "invalid " + e.getMessage(), e);
        }
    }

    /** Reads and validates a model directory (either {@link ModelLayout}). */
    public static ModelDirectory open(Path root) {
        if (root == null) {
            throw new ModelLoadException(null, "model directory is null");
        }
        if (!Files.isDirectory(root)) {
            throw new ModelLoadException(root, Files.exists(root) ? "not a directory" : "model directory does not exist");
        }
        Path compiled = root.resolve("compiled_models");
        ModelLayout layout;
        if (Files.isDirectory(compiled) || Files.isRegularFile(root.resolve(ArtifactRole.UNET.sampleFileName()))) {
            layout = ModelLayout.COMPILED_MODELS;  // AWS's compiled_models/, or its SDXL sample's <part>/model.pt
        } else if (Files.isRegularFile(root.resolve(ArtifactRole.UNET.optimumComponent().orElseThrow())
                .resolve(OPTIMUM_FILE_NAME))) {
            layout = ModelLayout.OPTIMUM_NEURON;
        } else {
            throw new ModelLoadException(compiled, "missing: a model directory holds the TorchScript artifacts in "
                    + "compiled_models/ (AWS's layout, our tools' output), or as AWS's SDXL sample saves them "
                    + "(<part>/model.pt), or is an optimum-neuron export (model_index.json, unet/" + OPTIMUM_FILE_NAME
                    + ", text_encoder/" + OPTIMUM_FILE_NAME + ", vae_decoder/" + OPTIMUM_FILE_NAME + ")");
        }
        Path manifestFile = compiled.resolve(Manifest.FILE_NAME);
        Manifest manifest = layout == ModelLayout.COMPILED_MODELS && Files.isRegularFile(manifestFile)
                ? Manifest.read(manifestFile) : null;

        Map<ArtifactRole, Path> artifacts = new LinkedHashMap<>();
        if (layout == ModelLayout.OPTIMUM_NEURON) {
            openOptimumArtifacts(root, artifacts);
        }
        for (ArtifactRole role : layout == ModelLayout.COMPILED_MODELS ? ArtifactRole.values() : new ArtifactRole[0]) {
            String name = role.fileName();
            boolean listed = manifest != null && manifest.artifacts().containsKey(role.id());
            if (listed) {
                name = manifest.artifacts().get(role.id()).file();
            }
            Path f = compiled.resolve(name);
            // AWS's SDXL sample saves each part as <part>/model.pt in its compiler work directory
            Path sample = root.resolve(role.sampleFileName());
            if (Files.isRegularFile(f)) {
                artifacts.put(role, f);
            } else if (!listed && Files.isRegularFile(sample)) {
                artifacts.put(role, sample);
            } else if (layout.requires(role)) {
                throw new ModelLoadException(f, role + " artifact not found (nor " + sample + ")");
            } else if (listed) {
                throw new ModelLoadException(f, role + " artifact not found (the manifest lists it)");
            }
        }

        Path tokenizer = root.resolve("tokenizer");
        for (String f : new String[] {"vocab.json", "merges.txt"}) {
            Path file = tokenizer.resolve(f);
            if (Files.isDirectory(tokenizer) && !(Files.isReadable(tokenizer) && Files.isExecutable(tokenizer))) {
                throw new ModelLoadException(tokenizer, "cannot read the tokenizer directory (permission denied)");
            }
            if (!Files.isRegularFile(file)) {
                throw new ModelLoadException(file, "tokenizer file not found");
            }
            if (!Files.isReadable(file)) {
                throw new ModelLoadException(file, "cannot read the tokenizer file (permission denied)");
            }
        }
        Path schedFile = root.resolve("scheduler").resolve("scheduler_config.json");
        Map<String, Object> sched = readMap(schedFile);
        checkSchedulerConfig(schedFile, sched);

        // optimum-neuron writes the VAE's config beside each of its parts (vae_decoder/config.json), AWS's layout vae/
        Path vaeFile = root.resolve("vae").resolve("config.json");
        if (layout == ModelLayout.OPTIMUM_NEURON && !Files.isRegularFile(vaeFile)) {
            vaeFile = root.resolve(ArtifactRole.VAE_DECODER.optimumComponent().orElseThrow()).resolve("config.json");
        }
        JsonNode vae = readTree(vaeFile);
        double scaling = vae.path("scaling_factor").isNumber() ? vae.get("scaling_factor").asDouble() : DEFAULT_SCALING_FACTOR;
        if (!(scaling > 0) || Double.isInfinite(scaling)) {
            throw new ModelLoadException(vaeFile, "scaling_factor must be a positive number, got " + vae.get("scaling_factor"));
        }
        JsonNode boc = vae.get("block_out_channels");
        if (boc != null && boc.isArray() && boc.size() > 7) {
            throw new ModelLoadException(vaeFile, "block_out_channels has " + boc.size() + " entries, a VAE scale "
                    + "factor of 2^" + (boc.size() - 1) + " (SD's has 4: 8)");
        }
        int vaeScale = boc != null && boc.isArray() && boc.size() > 0 ? 1 << (boc.size() - 1) : 8;
        int channels = positiveInt(vae, "latent_channels", 4, vaeFile);

        Path unetFile = root.resolve("unet").resolve("config.json");
        JsonNode unet = readTree(unetFile);
        int unetIn = positiveInt(unet, "in_channels", channels, unetFile);
        if (unetIn != channels && unetIn != 2 * channels + 1) {
            throw new ModelLoadException(unetFile, "in_channels " + unetIn + " fits neither the VAE's " + channels
                    + " latent channels (vae/config.json latent_channels) nor an inpainting UNet's " + (2 * channels + 1)
                    + " (latents + mask + masked-image latents)");
        }
        int lh;
        int lw;
        if (manifest != null && manifest.height() != null && manifest.width() != null) {
            if (manifest.height() % vaeScale != 0 || manifest.width() % vaeScale != 0) {
                throw new ModelLoadException(manifestFile, "height/width " + manifest.height() + "x" + manifest.width()
                        + " are not multiples of the VAE scale factor " + vaeScale);
            }
            lh = manifest.height() / vaeScale;
            lw = manifest.width() / vaeScale;
        } else if (unet.path("neuron").path("static_height").isIntegralNumber()
                && unet.path("neuron").path("static_width").isIntegralNumber()) {
            // optimum-neuron's compiled latent size (its config keeps the checkpoint's sample_size)
            lh = unet.path("neuron").get("static_height").asInt();
            lw = unet.path("neuron").get("static_width").asInt();
            if (lh < 1 || lw < 1 || lh > MAX_LATENT_SIDE || lw > MAX_LATENT_SIDE) {
                throw new ModelLoadException(unetFile, "neuron.static_height/static_width must be in 1.."
                        + MAX_LATENT_SIDE + " (latents), got " + lh + "x" + lw);
            }
        } else {
            JsonNode ss = unet.get("sample_size");
            if (ss == null || ss.isNull()) {
                throw new ModelLoadException(unetFile, "sample_size is missing (needed for the latent size)");
            }
            if (ss.isArray() && ss.size() == 2) {
                lh = ss.get(0).asInt();
                lw = ss.get(1).asInt();
            } else {
                lh = ss.asInt();
                lw = lh;
            }
            if (lh < 1 || lw < 1 || lh > MAX_LATENT_SIDE || lw > MAX_LATENT_SIDE) {
                throw new ModelLoadException(unetFile, "sample_size must be in 1.." + MAX_LATENT_SIDE + ", got " + ss);
            }
        }
        JsonNode ubc = unet.get("block_out_channels");
        int unetDown = ubc != null && ubc.isArray() && ubc.size() > 0 ? 1 << (ubc.size() - 1) : 1;
        Path index = root.resolve("model_index.json");
        Path te = root.resolve(ArtifactRole.TEXT_ENCODER.id()).resolve("config.json");
        FamilyDetection family = FamilyDetection.detect(Files.isRegularFile(index) ? readTree(index) : null, unet, sched,
                Files.isRegularFile(te) ? readTree(te) : null, padToken(tokenizer.resolve("special_tokens_map.json")));
        ModelDirectory dir = new ModelDirectory(root, tokenizer, sched, scaling, vaeScale, channels, unetIn, unetDown, lh,
                lw, manifest, java.util.Collections.unmodifiableMap(artifacts), layout, family);
        SdxlConfig.detect(dir);  // an SDXL model's own parts and configs, checked at load
        dir.unetSignature();  // a UNet no pipeline calls as diffusers does is refused here, before any artifact loads
        return dir;
    }

    /** The pad token of a {@code special_tokens_map.json} (a string or an added-token object), or null. */
    private static String padToken(Path file) {
        if (!Files.isRegularFile(file)) {
            return null;
        }
        JsonNode p = readTree(file).get("pad_token");
        if (p != null && p.isObject()) {
            p = p.get("content");
        }
        return p != null && p.isTextual() ? p.asText() : null;
    }

    /** An optional positive integer of a config (its default when absent or null); anything else fails the load. */
    private static int positiveInt(JsonNode config, String key, int dflt, Path file) {
        JsonNode v = config.get(key);
        if (v == null || v.isNull()) {
            return dflt;
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() < 1 || v.intValue() > 64) {
            throw new ModelLoadException(file, key + " must be an integer in 1..64, got " + v);
        }
        return v.intValue();
    }

    private static JsonNode readTree(Path file) {
        if (!Files.isRegularFile(file)) {
            Path dir = file.getParent();
            if (dir != null && Files.isDirectory(dir) && !Files.isExecutable(dir)) {
                throw new ModelLoadException(dir, "cannot read the directory (permission denied)");
            }
            throw new ModelLoadException(file, "config file not found");
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (java.nio.file.AccessDeniedException e) {
            throw new ModelLoadException(file, "cannot read (permission denied)", e);
        } catch (IOException e) {
            throw new ModelLoadException(file, "cannot read (" + (e.getMessage() == null ? e.getClass().getSimpleName()
                    : e.getMessage()) + ")", e);
        }
        try {
            JsonNode n = new ObjectMapper().readTree(bytes);
            if (n == null || !n.isObject()) {
                throw new ModelLoadException(file, "not a JSON object");
            }
            return n;
        } catch (IOException e) {
            throw new ModelLoadException(file, "invalid JSON: " + e.getMessage(), e);
        }
    }

    private static Map<String, Object> readMap(Path file) {
        readTree(file);
        try {
            return new ObjectMapper().readValue(file.toFile(), new TypeReference<LinkedHashMap<String, Object>>() { });
        } catch (IOException e) {
            throw new ModelLoadException(file, "invalid JSON: " + e.getMessage(), e);
        }
    }
}
