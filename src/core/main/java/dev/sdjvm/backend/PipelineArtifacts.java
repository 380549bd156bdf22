package dev.sdjvm.backend;

import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ArtifactSpec;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The loaded artifacts of one pipeline, per {@link ArtifactRole}: one artifact per role, except the UNet's replicas
 * (replica {@code i} on its own core on Neuron); every required role, and the optional ones the model has. Owns them:
 * {@link #close} closes each once.
 *
 * @param artifacts per role, its loaded copies (one; the UNet: one per replica)
 * @param specs     per role, what was found out about the artifact (the dtype it computes in, its batch, its device
 *                  and where the facts came from: {@code manifest}, {@code parameters}, {@code probe}, or the NEFF's
 *                  location)
 */
public record PipelineArtifacts(Map<ArtifactRole, List<Artifact>> artifacts, Map<ArtifactRole, ArtifactSpec> specs)
        implements AutoCloseable {
    /**
     * Keeps unmodifiable copies, in role order.
     *
     * @param artifacts per role, its loaded copies
     * @param specs     per role, what was found out about it
     * @throws IllegalArgumentException when a required role is missing, or a role other than the UNet has copies
     */
    public PipelineArtifacts {
        Map<ArtifactRole, List<Artifact>> a = new EnumMap<>(ArtifactRole.class);
        artifacts.forEach((role, list) -> a.put(role, List.copyOf(list)));
        for (ArtifactRole role : ArtifactRole.values()) {
            List<Artifact> list = a.get(role);
            if (role.required() && (list == null || list.isEmpty())) {
                throw new IllegalArgumentException("no " + role + " artifact");
            }
            if (list != null && list.size() != 1 && role.placement() != ArtifactRole.Placement.REPLICAS) {
                throw new IllegalArgumentException(role + ": " + list.size() + " artifacts, expected one");
            }
        }
        artifacts = Collections.unmodifiableMap(a);
        Map<ArtifactRole, ArtifactSpec> sp = new EnumMap<>(ArtifactRole.class);
        sp.putAll(specs);
        specs = Collections.unmodifiableMap(sp);
    }

    /**
     * The artifact of a role (the first replica of the UNet).
     *
     * @param role a role this pipeline has
     * @return its artifact
     * @throws IllegalArgumentException for an optional role the model does not have ({@link #find})
     */
    public Artifact get(ArtifactRole role) {
        return find(role).orElseThrow(() -> new IllegalArgumentException("this pipeline has no " + role + " artifact"));
    }

    /**
     * The artifact of a role, if the model has it.
     *
     * @param role any role
     * @return its artifact (the first replica of the UNet), or empty for an optional role the model does not have
     */
    public Optional<Artifact> find(ArtifactRole role) {
        List<Artifact> list = artifacts.get(role);
        return list == null ? Optional.empty() : Optional.of(list.get(0));
    }

    /** {@return the text encoder} */
    public Artifact textEncoder() {
        return get(ArtifactRole.TEXT_ENCODER);
    }

    /** {@return the UNet replicas} */
    public List<Artifact> unets() {
        return artifacts.get(ArtifactRole.UNET);
    }

    /** {@return the VAE's post_quant_conv} */
    public Artifact postQuantConv() {
        return get(ArtifactRole.VAE_POST_QUANT_CONV);
    }

    /** {@return the VAE decoder} */
    public Artifact decoder() {
        return get(ArtifactRole.VAE_DECODER);
    }

    /** {@return the VAE encoder (with quant_conv), or empty when the model has none (text-to-image does not need it)} */
    public Optional<Artifact> vaeEncoder() {
        return find(ArtifactRole.VAE_ENCODER);
    }

    /** {@return every artifact, in role order (the UNet's replicas in order)} */
    public List<Artifact> all() {
        List<Artifact> all = new ArrayList<>();
        artifacts.values().forEach(all::addAll);
        return all;
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

    /**
     * Closes what was loaded so far after a failure, last first, adding close failures to {@code cause}.
     *
     * @param loaded what was loaded, in load order
     * @param cause  the failure
     */
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
