/**
 * The denoising pipeline: diffusers' {@code StableDiffusionPipeline.__call__} step by step over the four artifacts,
 * the UNet runner (static-batch chunks, replicas for CFG data parallelism) and the embedded default model.
 */
package dev.sdjvm.pipeline;
