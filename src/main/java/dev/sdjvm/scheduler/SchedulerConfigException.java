package dev.sdjvm.scheduler;

import dev.sdjvm.InvalidRequestException;

/**
 * A scheduler configuration key (from {@code scheduler_config.json} or an override) has a value or combination
 * that diffusers rejects or that this library does not implement. {@link #field()} names the key.
 */
public final class SchedulerConfigException extends InvalidRequestException {
    private static final long serialVersionUID = 1L;

    public SchedulerConfigException(String key, String problem) {
        super(key, problem);
    }
}
