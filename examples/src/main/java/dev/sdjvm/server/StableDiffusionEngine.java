package dev.sdjvm.server;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.ModelInfo;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.cli.GenerationParameters;
import dev.sdjvm.cli.InfoCommand;
import dev.sdjvm.scheduler.Scheduler;
import dev.sdjvm.scheduler.Schedulers;
import java.io.IOException;
import java.io.UncheckedIOException;

/** An {@link Engine} over one shared {@link StableDiffusion} (loaded with {@code maxConcurrent} = the workers). */
public final class StableDiffusionEngine implements Engine {
    private final StableDiffusion sd;
    private final ModelInfo modelInfo;
    private final Info info;

    public StableDiffusionEngine(StableDiffusion sd) {
        this.sd = sd;
        this.modelInfo = sd.info();
        String name = modelInfo.root().getFileName() == null ? modelInfo.root().toString()
                : modelInfo.root().getFileName().toString();
        try {
            this.info = new Info(name, InfoCommand.precision(modelInfo), modelInfo.height(), modelInfo.width(),
                    InfoCommand.weightBytes(modelInfo), modelInfo.loadNanos() / 1e9);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public GenerationResult generate(GenerationRequest request) {
        return sd.generate(request);
    }

    @Override
    public Info info() {
        return info;
    }

    /**
     * The request, the budget ({@link dev.sdjvm.LoadOptions#limits()}, the same check {@code generate} makes) and
     * the scheduler at the request's step count, all pure Java: a bad override or step count is a 400 before the
     * request is queued.
     */
    @Override
    public void check(GenerationRequest request) {
        sd.options().limits().check(request, modelInfo.height(), modelInfo.width());
        String name = request.scheduler() == null || request.scheduler().isBlank()
                ? GenerationParameters.DEFAULT_SCHEDULER_CLASS : request.scheduler();
        Scheduler s = "config".equalsIgnoreCase(name)
                ? Schedulers.fromConfig(modelInfo.schedulerConfig(), request.schedulerOverrides())
                : Schedulers.create(name, modelInfo.schedulerConfig(), request.schedulerOverrides());
        s.setTimesteps(request.steps());
    }

    @Override
    public String schedulerClass(GenerationRequest request) {
        return GenerationParameters.schedulerClass(request, modelInfo.schedulerConfig());
    }

    @Override
    public void close() {
        sd.close();
    }
}
