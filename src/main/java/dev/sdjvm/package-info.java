/**
 * Stable Diffusion from the JVM: the facade {@link dev.sdjvm.StableDiffusion}, the request and result records,
 * load options and the exception hierarchy rooted at {@link dev.sdjvm.StableDiffusionException}.
 */
package dev.sdjvm;
