package dev.sdjvm;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

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
 * @param layout          the directory's layout: {@value #LAYOUT_AWS} (Neuron-compiled {@code compiled_models/*.pt}),
 *                        {@value #LAYOUT_CPU} ({@code compiled_models/*.pt} traced for the CPU) or
 *                        {@value #LAYOUT_OPTIMUM} ({@code <component>/model.neuron} from {@code optimum-cli export neuron})
 * @param family          the model family, from the model's own files: {@code SD1}, {@code SD2}, {@code SD2_V}
 *                        (768 v-prediction), {@code SDXL}, {@code LCM}, {@code TURBO} (few-step) or {@code UNKNOWN}
 * @param familyEvidence  the facts the family rests on ({@code model_index.json} class, UNet and scheduler config keys)
 * @param familyProblem   why the model cannot run (SDXL, UNKNOWN), or null when it can
 * @param defaultScheduler the scheduler a request without one runs: {@code config} (the model's own, for LCM and
 *                        Turbo models) or a diffusers class name ({@code DPMSolverMultistepScheduler})
 * @param defaultSteps    the {@code num_inference_steps} a request without one runs: diffusers' pipeline's default
 *                        for the family (50; LCM 4), 1 for a few-step (Turbo) model
 * @param defaultGuidanceScale the {@code guidance_scale} a request without one runs: diffusers' pipeline's default
 *                        for the family (7.5; SDXL 5.0; LCM 8.5), 0 for a few-step (Turbo) model
 * @param tasks           what the model runs: {@code text-to-image}, {@code image-to-image}, {@code inpainting}
 *                        (the image tasks need a VAE encoder; LCM has no inpainting; an inpainting UNet runs only
 *                        inpainting)
 */
public record ModelInfo(Path root, int height, int width, Map<String, Artifact> artifacts, int unetReplicas,
                        int pipelines, Backend backend, String backendDetail, Map<String, Object> schedulerConfig,
                        Manifest manifest, long loadNanos, boolean loaded, String layout, String family,
                        String familyEvidence, String familyProblem, String defaultScheduler, int defaultSteps,
                        double defaultGuidanceScale, List<String> tasks) {
    /** {@link #layout()} of AWS's Inferentia2 layout: Neuron-compiled {@code compiled_models/*.pt} carrying NEFFs. */
    public static final String LAYOUT_AWS = "AWS compiled_models (Neuron)";
    /** {@link #layout()} of {@code compiled_models/*.pt} traced for the CPU. */
    public static final String LAYOUT_CPU = "TorchScript CPU (compiled_models)";
    /** {@link #layout()} of an {@code optimum-cli export neuron} directory. */
    public static final String LAYOUT_OPTIMUM = "optimum-neuron (<component>/model.neuron)";

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
     * @param layout          the directory's layout
     * @param family          the model family
     * @param familyEvidence  the facts the family rests on
     * @param familyProblem   why the model cannot run, or null
     * @param defaultScheduler the scheduler a request without one runs
     * @param defaultSteps    the steps a request without them runs
     * @param defaultGuidanceScale the guidance scale a request without one runs
     * @param tasks           what the model runs
     */
    public ModelInfo {
        artifacts = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(artifacts));
        tasks = List.copyOf(tasks);
    }

    /**
     * One artifact.
     *
     * @param role    {@code text_encoder}, {@code unet}, {@code vae_post_quant_conv}, {@code vae_decoder} or
     *                {@code vae_encoder}
     * @param file    the {@code .pt} file
     * @param dtype   the dtype its floating-point inputs take (for the text encoder the dtype it computes in), or null
     *                when unknown
     * @param batch   its static batch, or null when it takes any batch
     * @param device  where it runs: the CPU, or its NeuronCores; null when not loaded
     * @param source  where the facts come from
     * @param neff    where its compiled NEFF was found (e.g. {@code unet.pt record 'unet/data.pkl' at byte 371 (NEFF ...)}),
     *                or null
     * @param inputs  its input tensors as the backend reports them ({@code input0:bfloat16[1, 4, 64, 64]}); empty when
     *                unknown
     * @param outputs its output tensors; empty when unknown before running (TorchScript)
     */
    public record Artifact(String role, Path file, DType dtype, Integer batch, Device device, Source source, String neff,
                           List<String> inputs, List<String> outputs) {
        /**
         * Keeps unmodifiable copies of the tensor lists.
         *
         * @param role    the role
         * @param file    the {@code .pt} file
         * @param dtype   the dtype of its floating-point inputs, or null
         * @param batch   its static batch, or null
         * @param device  where it runs, or null
         * @param source  where the facts come from (not null)
         * @param neff    where its NEFF was found, or null
         * @param inputs  its input tensors
         * @param outputs its output tensors
         */
        public Artifact {
            Objects.requireNonNull(source, "source");
            inputs = List.copyOf(inputs);
            outputs = List.copyOf(outputs);
        }
    }

    /** The element type of an artifact's tensors, by torch's name. */
    public enum DType {
        /** {@code torch.float32}. */
        FLOAT32("float32"),
        /** {@code torch.bfloat16}. */
        BFLOAT16("bfloat16"),
        /** {@code torch.float16}. */
        FLOAT16("float16"),
        /** {@code torch.int64}. */
        INT64("int64"),
        /** {@code torch.int32}. */
        INT32("int32");

        private final String torchName;

        DType(String torchName) {
            this.torchName = torchName;
        }

        /** {@return torch's name without {@code torch.}: {@code float32}, {@code bfloat16}, ...} */
        public String torchName() {
            return torchName;
        }
    }

    /** Where the facts about an artifact (dtype, batch) come from. */
    public enum Source {
        /** Our tools' {@code compiled_models/sdjvm-manifest.json}. */
        MANIFEST,
        /** The dtype of the parameters stored in the TorchScript archive (CPU-traced: any batch). */
        PARAMETERS,
        /** Learnt by running the artifact once at load. */
        PROBE,
        /** The NEFF compiled into the archive (its tensors' dtypes and static shapes). */
        NEFF,
        /** Nothing known yet: the model was only inspected and has neither a manifest entry nor a NEFF. */
        UNKNOWN;

        /** {@return the lower-case name ({@code manifest}, {@code parameters}, ...), as {@code sd info} prints it} */
        public String id() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * Where an artifact runs: the CPU (libtorch) or one or more NeuronCores (one per UNet replica).
     *
     * @param kind        the kind of device
     * @param neuronCores the NeuronCore indices, in order; empty for the CPU
     */
    public record Device(Kind kind, List<Integer> neuronCores) {
        /** The CPU. */
        public static final Device CPU = new Device(Kind.CPU, List.of());

        /** A kind of device. */
        public enum Kind {
            /** The CPU, through libtorch. */
            CPU,
            /** AWS Inferentia2 NeuronCores, through libnrt. */
            NEURON
        }

        /**
         * Checks that the CPU has no cores listed and a Neuron device at least one, none negative.
         *
         * @param kind        the kind of device
         * @param neuronCores the NeuronCore indices (copied)
         */
        public Device {
            Objects.requireNonNull(kind, "kind");
            neuronCores = List.copyOf(neuronCores);
            if (kind == Kind.CPU ? !neuronCores.isEmpty() : neuronCores.isEmpty()) {
                throw new IllegalArgumentException(kind + " with NeuronCores " + neuronCores);
            }
            for (int c : neuronCores) {
                if (c < 0) {
                    throw new IllegalArgumentException("negative NeuronCore index " + c);
                }
            }
        }

        /**
         * {@return NeuronCores}
         *
         * @param cores their indices
         */
        public static Device neuron(int... cores) {
            return new Device(Kind.NEURON, java.util.Arrays.stream(cores).boxed().toList());
        }

        /**
         * {@return a device from its one-line form: {@code cpu}, or NeuronCores {@code nc0} / {@code nc0,nc1}}
         *
         * @param text the one-line form, as {@link #toString()} writes it
         * @throws IllegalArgumentException if it is neither
         */
        public static Device parse(String text) {
            if ("cpu".equals(text)) {
                return CPU;
            }
            List<Integer> cores = new java.util.ArrayList<>();
            for (String nc : text.split(",", -1)) {
                if (!nc.matches("nc[0-9]{1,4}")) {
                    throw new IllegalArgumentException("not a device: '" + text + "' (cpu, nc0, nc0,nc1, ...)");
                }
                cores.add(Integer.parseInt(nc.substring(2)));
            }
            return new Device(Kind.NEURON, cores);
        }

        /** {@return {@code cpu}, or the NeuronCores as {@code nc0,nc1}} */
        @Override
        public String toString() {
            if (kind == Kind.CPU) {
                return "cpu";
            }
            StringBuilder sb = new StringBuilder();
            for (int c : neuronCores) {
                sb.append(sb.length() == 0 ? "" : ",").append("nc").append(c);
            }
            return sb.toString();
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
