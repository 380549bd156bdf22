package dev.sdjvm.scheduler;

import dev.sdjvm.errors.InvalidRequestException;

/**
 * A scheduler configuration key (from {@code scheduler_config.json} or an override) has a value or combination
 * that diffusers rejects or that this library does not implement. {@link #field()} names the key.
 */
public final class SchedulerConfigException extends InvalidRequestException {
    private static final long serialVersionUID = 1L;

    /**
     * A rejected configuration key.
     *
     * @param key     the diffusers key name, or null when the problem is not one key's
     * @param problem what is wrong with it
     */
    SchedulerConfigException(String key, String problem) {
        super(key, problem);
    }
}
