/**
 * diffusers noise schedulers in pure Java, numerically matching diffusers (float32 arrays, row-major).
 *
 * <p>Create one with {@link dev.sdjvm.scheduler.Schedulers#fromConfig} (by the config's {@code _class_name}) or
 * {@link dev.sdjvm.scheduler.Schedulers#create} (by name or alias, like diffusers'
 * {@code Cls.from_config(config, **overrides)}), then drive it with {@link dev.sdjvm.scheduler.Scheduler}.
 * Schedule tables (betas, alphas_cumprod, sigmas, timesteps) are computed with the same float32/float64 steps as
 * torch and numpy, and each step's arithmetic is done in float32 in the order torch evaluates it.
 */
package dev.sdjvm.scheduler;
