package dev.sdjvm.pipeline;

import dev.sdjvm.backend.Artifact;
import dev.sdjvm.backend.Invocation;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Invocations of one artifact kept for reuse, per input shapes: a generation takes one and gives it back, so input
 * buffers (on Neuron, device tensors and tensor sets on the artifact's core) are allocated once, not per request.
 * Thread-safe. {@link #close} closes the idle ones; an invocation released after that is closed at once.
 */
final class InvocationPool implements AutoCloseable {
    private final Artifact artifact;
    private final Map<String, ArrayDeque<Invocation>> idle = new HashMap<>();
    private final Map<Invocation, String> keys = new HashMap<>();
    private boolean closed;

    InvocationPool(Artifact artifact) {
        this.artifact = artifact;
    }

    Artifact artifact() {
        return artifact;
    }

    /** An idle invocation for these input shapes, or a new one. */
    Invocation acquire(long[]... shapes) {
        String key = Arrays.deepToString(shapes);
        synchronized (this) {
            if (closed) {
                throw new IllegalStateException(artifact.role() + " is closed");
            }
            ArrayDeque<Invocation> q = idle.get(key);
            if (q != null && !q.isEmpty()) {
                return q.pop();
            }
        }
        Invocation inv = artifact.open(shapes);
        synchronized (this) {
            keys.put(inv, key);
        }
        return inv;
    }

    /** Gives an invocation back (closes it when the pool is closed). */
    void release(Invocation inv) {
        synchronized (this) {
            if (!closed) {
                idle.computeIfAbsent(keys.get(inv), k -> new ArrayDeque<>()).push(inv);
                return;
            }
            keys.remove(inv);
        }
        inv.close();
    }

    @Override
    public void close() {
        List<Invocation> toClose = new ArrayList<>();
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            for (ArrayDeque<Invocation> q : idle.values()) {
                toClose.addAll(q);
                q.forEach(keys::remove);
            }
            idle.clear();
        }
        toClose.forEach(Invocation::close);
    }
}
