package dev.sdjvm.backend.neuron;

import java.util.concurrent.atomic.AtomicBoolean;

public final class TorchNeuronLoader {
    private static final AtomicBoolean LOADED = new AtomicBoolean();
    public static boolean isLoaded() { return LOADED.get(); }
}
