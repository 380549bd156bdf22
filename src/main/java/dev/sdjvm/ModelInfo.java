package dev.sdjvm;

import dev.sdjvm.model.ArtifactSpec;
import dev.sdjvm.model.Manifest;
import java.nio.file.Path;
import java.util.Map;

/**
 * What a loaded model is.
 *
 * @param root            model directory
 * @param height          image height
 * @param width           image width
 * @param artifacts       per role: file, input dtype, batch (null = dynamic), and where that was learnt
 * @param unetReplicas    UNet copies loaded per pipeline
 * @param pipelines       independent pipelines (throughput mode)
 * @param backend         where it runs
 * @param backendDetail   the backend in one line (libtorch version and threads, or the Neuron runtime and its cores)
 * @param schedulerConfig {@code scheduler/scheduler_config.json}
 * @param manifest        our tools' manifest, or null
 * @param loadNanos       load time including warm-up
 */
public record ModelInfo(Path root, int height, int width, Map<String, ArtifactSpec> artifacts, int unetReplicas,
                        int pipelines, Backend backend, String backendDetail, Map<String, Object> schedulerConfig, Manifest manifest, long loadNanos) {
}
