/**
 * Stable Diffusion from the JVM: the facade {@link dev.sdjvm.StableDiffusion}, the request and result records,
 * load options and the exception hierarchy rooted at {@link dev.sdjvm.errors.StableDiffusionException}.
 */
package dev.sdjvm;

import dev.sdjvm.errors.StableDiffusionException;
