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
 */
public record ModelDirectory(Path root, Path tokenizerDir, Map<String, Object> schedulerConfig, double scalingFactor,
                             int vaeScaleFactor, int latentChannels, int unetInChannels, int unetDownFactor,
                             int latentHeight,
                             int latentWidth,
                             Manifest manifest, Map<ArtifactRole, Path> artifacts) {

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

    /** Reads and validates a model directory. */
    public static ModelDirectory open(Path root) {
        if (root == null) {
            throw new ModelLoadException(null, "model directory is null");
        }
        if (!Files.isDirectory(root)) {
            throw new ModelLoadException(root, Files.exists(root) ? "not a directory" : "model directory does not exist");
        }
        Path compiled = root.resolve("compiled_models");
        if (!Files.isDirectory(compiled)) {
            throw new ModelLoadException(compiled, "missing: a model directory holds the TorchScript artifacts in compiled_models/");
        }
        Path manifestFile = compiled.resolve(Manifest.FILE_NAME);
        Manifest manifest = Files.isRegularFile(manifestFile) ? Manifest.read(manifestFile) : null;

        Map<ArtifactRole, Path> artifacts = new LinkedHashMap<>();
        for (ArtifactRole role : ArtifactRole.values()) {
            String name = role.fileName();
            boolean listed = manifest != null && manifest.artifacts().containsKey(role.id());
            if (listed) {
                name = manifest.artifacts().get(role.id()).file();
            }
            Path f = compiled.resolve(name);
            if (Files.isRegularFile(f)) {
                artifacts.put(role, f);
            } else if (role.required()) {
                throw new ModelLoadException(f, role + " artifact not found");
            } else if (listed) {
                throw new ModelLoadException(f, role + " artifact not found (the manifest lists it)");
            }
        }

        Path tokenizer = root.resolve("tokenizer");
        for (String f : new String[] {"vocab.json", "merges.txt"}) {
            if (!Files.isRegularFile(tokenizer.resolve(f))) {
                throw new ModelLoadException(tokenizer.resolve(f), "tokenizer file not found");
            }
        }
        Path schedFile = root.resolve("scheduler").resolve("scheduler_config.json");
        Map<String, Object> sched = readMap(schedFile);
        checkSchedulerConfig(schedFile, sched);

        Path vaeFile = root.resolve("vae").resolve("config.json");
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
        return new ModelDirectory(root, tokenizer, sched, scaling, vaeScale, channels, unetIn, unetDown, lh, lw, manifest,
                java.util.Collections.unmodifiableMap(artifacts));
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
            throw new ModelLoadException(file, "config file not found");
        }
        try {
            JsonNode n = new ObjectMapper().readTree(Files.readAllBytes(file));
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
