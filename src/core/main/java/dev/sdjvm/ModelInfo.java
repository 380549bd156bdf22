package dev.sdjvm;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * What a model is: from {@link StableDiffusion#info()} once loaded, or from {@link StableDiffusion#inspect(Path)}
 * (the files only, nothing loaded).
 *
 * @param root            model directory
 * @param height          image height
 * @param width           image width
 * @param artifacts       per role, in load order: {@code text_encoder}, {@code unet}, {@code vae_post_quant_conv},
 *                        {@code vae_decoder}, and {@code vae_encoder} when the model has one (image-to-image needs it)
 * @param unetReplicas    UNet copies loaded per pipeline (0 when not loaded)
 * @param pipelines       independent pipelines, throughput mode (0 when not loaded)
 * @param backend         what runs (or would run) the artifacts
 * @param backendDetail   the backend in one line: libtorch's version and threads, the Neuron runtime and its cores, or
 *                        (not loaded) why this backend
 * @param schedulerConfig {@code scheduler/scheduler_config.json}
 * @param manifest        our tools' {@code compiled_models/sdjvm-manifest.json}, or null (AWS's directories have none)
 * @param loadNanos       load time including warm-up (0 when not loaded)
 * @param loaded          whether the artifacts were loaded (then dtypes, batches and tensors are what the backend found)
 */
public record ModelInfo(Path root, int height, int width, Map<String, Artifact> artifacts, int unetReplicas,
                        int pipelines, Backend backend, String backendDetail, Map<String, Object> schedulerConfig,
                        Manifest manifest, long loadNanos, boolean loaded) {
    /**
     * Keeps an unmodifiable copy of the artifacts.
     *
     * @param root            model directory
     * @param height          image height
     * @param width           image width
     * @param artifacts       per role
     * @param unetReplicas    UNet copies per pipeline
     * @param pipelines       independent pipelines
     * @param backend         what runs the artifacts
     * @param backendDetail   the backend in one line
     * @param schedulerConfig {@code scheduler/scheduler_config.json}
     * @param manifest        our tools' manifest, or null
     * @param loadNanos       load time
     * @param loaded          whether the artifacts were loaded
     */
    public ModelInfo {
        artifacts = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(artifacts));
    }

    /**
     * One artifact.
     *
     * @param role    {@code text_encoder}, {@code unet}, {@code vae_post_quant_conv}, {@code vae_decoder} or
     *                {@code vae_encoder}
     * @param file    the {@code .pt} file
     * @param dtype   the dtype its floating-point inputs take ({@code float32}, {@code bfloat16}, ...; for the text encoder the
     *                dtype it computes in), or null when unknown
     * @param batch   its static batch, or null when it takes any batch
     * @param device  where it runs: {@code cpu}, or its NeuronCores ({@code nc0}, {@code nc0,nc1}); null when not loaded
     * @param source  where the facts come from: {@code manifest}, {@code parameters}, {@code probe}, {@code neff}
     * @param neff    where its compiled NEFF was found (e.g. {@code unet.pt record 'unet/data.pkl' at byte 371 (NEFF ...)}),
     *                or null
     * @param inputs  its input tensors as the backend reports them ({@code input0:bfloat16[1, 4, 64, 64]}); empty when
     *                unknown
     * @param outputs its output tensors; empty when unknown before running (TorchScript)
     */
    public record Artifact(String role, Path file, String dtype, Integer batch, String device, String source, String neff,
                           List<String> inputs, List<String> outputs) {
        /**
         * Keeps unmodifiable copies of the tensor lists.
         *
         * @param role    the role
         * @param file    the {@code .pt} file
         * @param dtype   the dtype of its floating-point inputs, or null
         * @param batch   its static batch, or null
         * @param device  where it runs, or null
         * @param source  where the facts come from
         * @param neff    where its NEFF was found, or null
         * @param inputs  its input tensors
         * @param outputs its output tensors
         */
        public Artifact {
            inputs = List.copyOf(inputs);
            outputs = List.copyOf(outputs);
        }
    }

    /**
     * The manifest our export tools write.
     *
     * @param format       {@code sdjvm-manifest/1}
     * @param target       {@code cpu} or {@code neuron}
     * @param createdBy    the tool
     * @param torch        the torch that traced or compiled the artifacts
     * @param torchNeuronx torch-neuronx's version, or null
     * @param neuronxCc    neuronx-cc's version, or null
     */
    public record Manifest(String format, String target, String createdBy, String torch, String torchNeuronx,
                           String neuronxCc) {
    }
}
