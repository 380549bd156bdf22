package dev.sdjvm.backend;

import dev.sdjvm.model.ArtifactSpec;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The loaded artifacts of one pipeline: text encoder, UNet replicas (replica {@code i} on its own core on Neuron),
 * VAE post_quant_conv and decoder. Owns them: {@link #close} closes each once.
 *
 * @param specs per role, what was found out about the artifact (the dtype it computes in, its batch, its device and
 *              where the facts came from: {@code manifest}, {@code parameters}, {@code probe}, or the NEFF's location)
 */
public record PipelineArtifacts(Artifact textEncoder, List<Artifact> unets, Artifact postQuantConv, Artifact decoder,
                                Map<String, ArtifactSpec> specs) implements AutoCloseable {
    public PipelineArtifacts {
        unets = List.copyOf(unets);
        specs = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(specs));
        if (unets.isEmpty()) {
            throw new IllegalArgumentException("no UNet");
        }
    }

    /** Every artifact, text encoder first. */
    public List<Artifact> all() {
        List<Artifact> a = new ArrayList<>();
        a.add(textEncoder);
        a.addAll(unets);
        a.add(postQuantConv);
        a.add(decoder);
        return a;
    }

    @Override
    public void close() {
        RuntimeException first = null;
        for (Artifact a : all()) {
            try {
                a.close();
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /** Closes what was loaded so far after a failure, adding close failures to {@code cause}. */
    public static void closeQuietly(List<? extends AutoCloseable> loaded, Throwable cause) {
        for (int i = loaded.size() - 1; i >= 0; i--) {
            try {
                loaded.get(i).close();
            } catch (Exception e) {
                cause.addSuppressed(e);
            }
        }
    }
}
