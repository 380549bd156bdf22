package dev.sdjvm.cli;

import dev.sdjvm.GenerationParameters;
import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.ModelInfo;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.image.ImageInputs;
import dev.sdjvm.image.RgbImage;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ThreadLocalRandom;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code sd generate}: text to image file(s). */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generates image(s) from a prompt and writes them as PNG (with the generation parameters in a "
                + "'parameters' text chunk, A1111 format) or JPEG.",
                "With --init-image: image-to-image; with --init-image and --mask: inpainting (both need a model with "
                + "compiled_models/vae_encoder.pt).",
                "Prints the seed and the written file(s) on stdout; progress goes to stderr.",
                "Short options follow stable-diffusion.cpp's sd-cli where they mean the same: -p -n -m -H -W -s -i -o -t -v."})
public final class GenerateCommand implements Callable<Integer> {
    /** {@code --seed -1}: a random seed, as stable-diffusion.cpp. */
    static final long RANDOM_SEED = -1;

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", arity = "0..1", paramLabel = "PROMPT", description = "The prompt (or -p/--prompt).")
    String positionalPrompt;

    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", description = "The prompt, instead of PROMPT.")
    String promptOption;

    @Option(names = {"-n", "--negative-prompt"}, paramLabel = "TEXT", description = "What the image should not show.")
    String negativePrompt;

    @Option(names = "--steps", paramLabel = "N",
            description = "Denoising steps (num_inference_steps). Default: the model's, as diffusers' pipeline for its "
                    + "family: " + GenerationRequest.DEFAULT_STEPS + " (LCM: 4; a few-step Turbo model: 1); 'sd info' "
                    + "shows it.")
    Integer steps;

    @Option(names = {"-g", "--guidance", "--cfg-scale"}, paramLabel = "SCALE",
            description = "Classifier-free guidance scale (guidance_scale; <= 1 turns guidance off). Default: the "
                    + "model's: " + GenerationRequest.DEFAULT_GUIDANCE + " (SDXL: 5.0; LCM: 8.5; a few-step Turbo "
                    + "model: 0); 'sd info' shows it.")
    Double guidance;

    @Option(names = "--guidance-rescale", paramLabel = "R", defaultValue = "0",
            description = "diffusers' guidance_rescale, 0..1: under guidance, mix the guided noise rescaled to the text "
                    + "prediction's standard deviation by this factor (0.7 in its paper, for v-prediction models). "
                    + "Default: ${DEFAULT-VALUE} (off).")
    double guidanceRescale;

    @Option(names = {"-s", "--seed"}, paramLabel = "N",
            description = "Seed of the initial noise (>= 0); -1 = a random seed (the default), printed on stderr before "
                    + "the generation starts and written in the PNG parameters.")
    Long seed;

    @Option(names = {"--scheduler", "--sampling-method"}, paramLabel = "NAME", completionCandidates = SchedulerNames.class,
            description = "Scheduler: ${COMPLETION-CANDIDATES} ('config' = the model's scheduler_config.json), or a "
                    + "diffusers class name; 'sd schedulers' lists every name and spelling. Default: "
                    + "DPMSolverMultistepScheduler (DPM++ 2M), as AWS's deployment; for LCM and Turbo models the "
                    + "model's own scheduler ('config').")
    String scheduler;

    @Option(names = "--scheduler-override", paramLabel = "KEY=VALUE",
            description = "Scheduler config override, diffusers key names, JSON-typed values "
                    + "(e.g. use_karras_sigmas=true, timestep_spacing=trailing). Repeatable.")
    Map<String, String> schedulerOverrides;

    @Option(names = {"-c", "--count"}, paramLabel = "N", defaultValue = "1",
            description = "Images to generate from the prompt (num_images_per_prompt; one seed for all). Default: ${DEFAULT-VALUE}.")
    int count;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", defaultValue = "out.png",
            description = "Output file; with --count > 1: FILE-1.png, FILE-2.png, ... A directory (existing, or "
                    + "ending in /) gets out.png, or out-1.png, out-2.png, ... inside it. Default: ${DEFAULT-VALUE}.")
    Path output;

    @Option(names = "--format", paramLabel = "png|jpeg",
            description = "Image format. Default: from the output file's extension, else png.")
    String format;

    @Option(names = {"-H", "--height"}, paramLabel = "PX",
            description = "Image height (multiple of 8). Default: the model's. CPU-traced artifacts take other sizes; "
                    + "compiled ones (Neuron, static batch) only their own.")
    Integer height;

    @Option(names = {"-W", "--width"}, paramLabel = "PX", description = "Image width (multiple of 8). Default: the model's.")
    Integer width;

    @Option(names = {"-i", "--init-image", "--init-img"}, paramLabel = "FILE",
            description = "Start image (PNG or JPEG): image-to-image, or inpainting with --mask. Image-to-image runs at "
                    + "its size floored to a multiple of 8 (or --height/--width); inpainting at --height/--width or "
                    + "the model's size, as diffusers.")
    Path initImage;

    @Option(names = "--strength", paramLabel = "S",
            description = "How much of the schedule runs from the noised start image, in (0, 1] (diffusers' strength: "
                    + "int(steps x S) steps). Default: 0.8, or 1.0 with --mask, as diffusers; 0.3 for an SDXL model, as "
                    + "StableDiffusionXLImg2ImgPipeline.")
    Double strength;

    @Option(names = "--mask", paramLabel = "FILE",
            description = "Inpainting mask (PNG or JPEG) of the start image's size: white repaints, black keeps "
                    + "(grey is binarized at 128).")
    Path mask;

    @Option(names = "--no-progress", description = "Do not show the progress bar.")
    boolean noProgress;

    @Option(names = {"-v", "--verbose"}, description = "Log at INFO level.")
    boolean verbose;

    @Mixin
    ModelOptions modelOptions;

    @Override
    public Integer call() throws IOException {
        String prompt = prompt();
        Long seed = seed();
        ImageFiles.Format fmt = resolveFormat();
        Map<String, Object> overrides;
        try {
            overrides = Overrides.parse(schedulerOverrides);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        ProgressBar.Style style = noProgress ? ProgressBar.Style.OFF : ProgressBar.detect();
        GenerationRequest.Builder builder = GenerationRequest.builder(prompt);
        if (steps != null) {
            builder.steps(steps);
        }
        if (guidance != null) {
            builder.guidanceScale(guidance);
        }
        GenerationRequest request = builder
                .initImage(initImage == null ? null : readImage(initImage, "--init-image", "image"))
                .mask(mask == null ? null : readImage(mask, "--mask", "mask_image"))
                .strength(strength)
                .negativePrompt(negativePrompt)
                .guidanceRescale(guidanceRescale)
                .seed(seed)
                .numImages(count)
                .height(height)
                .width(width)
                .scheduler(scheduler)
                .schedulerOverrides(overrides)
                .listener(new ProgressBar(err, style, ""))
                .build();  // checks the request before the (slow) model load
        List<Path> files = outputFiles(outputBase(fmt), count);
        checkWritable(files);
        modelOptions.checkThreads();
        try (StableDiffusion sd = modelOptions.load(1)) {
            ModelInfo info = sd.info();
            if (this.seed == null || this.seed == RANDOM_SEED) {
                // drawn here rather than by the library, so that it is known even if the run is interrupted
                err.println("random seed: " + seed);
                err.flush();
            }
            GenerationResult result = sd.generate(request);
            String schedulerClass = result.scheduler();  // what ran (an SDXL model runs its own by default)
            String modelName = info.root().getFileName() == null ? info.root().toString()
                    : info.root().getFileName().toString();
            String modelHash = ModelHash.of(info);
            for (int i = 0; i < files.size(); i++) {
                RgbImage image = result.images().get(i);
                // each image carries what reproduces it: the batch's seed and size, and its position in the batch
                String text = GenerationParameters.of(result, i, modelHash, modelName);
                try {
                    ImageFiles.write(image.toBufferedImage(), fmt, Map.of(GenerationParameters.PNG_KEYWORD, text),
                            files.get(i));
                } catch (IOException e) {
                    throw new Main.UserException(Main.ERROR, "output: cannot write " + files.get(i) + ": "
                            + ImageFiles.reason(e));
                }
            }
            if (result.promptTruncated()) {
                err.println("warning: the prompt is longer than the text encoder's 75 tokens; the rest was ignored");
            }
            out.println("seed: " + result.seed());
            for (Path f : files) {
                out.println("saved: " + f);
            }
            out.flush();
        }
        return Main.OK;
    }

    /** The prompt, from PROMPT or -p/--prompt: exactly one of them. */
    private String prompt() {
        if (positionalPrompt != null && promptOption != null) {
            throw new ParameterException(spec.commandLine(), "the prompt is given twice: as PROMPT ('" + positionalPrompt
                    + "') and with -p/--prompt ('" + promptOption + "'); give one");
        }
        String p = positionalPrompt != null ? positionalPrompt : promptOption;
        if (p == null) {
            throw new ParameterException(spec.commandLine(), "Missing required parameter: 'PROMPT' (or -p/--prompt)");
        }
        return p;
    }

    /** The seed to run: the option's, or a random one for -1 or none (as the library draws it: 0..2^53). */
    private Long seed() {
        if (seed == null || seed == RANDOM_SEED) {
            return ThreadLocalRandom.current().nextLong(0, 1L << 53);
        }
        if (seed < 0) {
            throw new ParameterException(spec.commandLine(), "--seed: must be >= 0, or -1 for a random seed; got " + seed);
        }
        return seed;
    }

    /**
     * Reads and decodes an input image (as diffusers' {@code load_image}: Pillow's {@code convert("RGB")} of the raw
     * samples); a missing or unreadable file is a usage error naming the option, an undecodable one an invalid
     * request naming the field.
     */
    static RgbImage readImage(Path file, String option, String field) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new Main.UserException(Main.USAGE, option + ": no such file: " + file);
        } catch (IOException | SecurityException e) {
            throw new Main.UserException(Main.USAGE, option + ": cannot read " + file + " ("
                    + e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage()) + ")");
        }
        return ImageInputs.decode(bytes, field);
    }

    /**
     * Before the (slow) generation: each output's directory exists and a file can be created in it (a probe file,
     * deleted at once), and the output is not a directory or a read-only file.
     */
    static void checkWritable(List<Path> files) {
        for (Path f : files) {
            Path abs = f.toAbsolutePath();
            Path parent = abs.getParent();
            if (parent != null && !Files.isDirectory(parent)) {
                throw new Main.UserException(Main.USAGE, "output: directory does not exist: " + parent);
            }
            if (Files.isDirectory(abs)) {
                throw new Main.UserException(Main.USAGE, "output: " + f + " is a directory");
            }
            if (Files.exists(abs) && !Files.isWritable(abs)) {
                throw new Main.UserException(Main.USAGE, "output: cannot write " + f + " (read-only)");
            }
            try {
                Path probe = Files.createTempFile(parent == null ? Path.of(".") : parent, ".sd-write-check-", ".tmp");
                Files.delete(probe);
            } catch (IOException | UnsupportedOperationException | SecurityException e) {
                throw new Main.UserException(Main.USAGE, "output: cannot write to " + parent + " ("
                        + e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage()) + ")");
            }
        }
    }

    private ImageFiles.Format resolveFormat() {
        if (format != null) {
            ImageFiles.Format f = ImageFiles.Format.parse(format);
            if (f == null) {
                throw new ParameterException(spec.commandLine(), "--format: expected png or jpeg, got '" + format + "'");
            }
            return f;
        }
        ImageFiles.Format f = ImageFiles.Format.ofFileName(output.getFileName().toString());
        return f == null ? ImageFiles.Format.PNG : f;
    }

    /**
     * The output file to number from: {@code --output} itself, or {@code DIR/out.EXT} when {@code --output} names a
     * directory (one that exists, or any path written with a trailing {@code /}, which must then exist).
     */
    private Path outputBase(ImageFiles.Format fmt) {
        String raw = output.toString();
        var opt = spec.findOption("--output");
        if (opt != null && !opt.originalStringValues().isEmpty()) {
            raw = opt.originalStringValues().get(opt.originalStringValues().size() - 1);
        }
        boolean slash = raw.endsWith("/") || raw.endsWith(java.io.File.separator);
        if (!slash && !Files.isDirectory(output)) {
            return output;
        }
        if (!Files.isDirectory(output)) {
            throw new Main.UserException(Main.USAGE, "output: directory does not exist: " + raw);
        }
        return output.resolve("out." + fmt.extension());
    }

    /** out.png -&gt; [out.png]; with n &gt; 1: [out-1.png, out-2.png, ...]. */
    static List<Path> outputFiles(Path output, int n) {
        List<Path> files = new ArrayList<>();
        if (n <= 1) {
            files.add(output);
            return files;
        }
        String name = output.getFileName().toString();
        int dot = name.lastIndexOf('.');
        String stem = dot > 0 ? name.substring(0, dot) : name;
        String ext = dot > 0 ? name.substring(dot) : "";
        for (int i = 1; i <= n; i++) {
            files.add(output.resolveSibling(stem + "-" + i + ext));
        }
        return files;
    }
}
