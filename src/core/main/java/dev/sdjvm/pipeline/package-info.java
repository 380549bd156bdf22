/**
 * The Stable Diffusion pipelines, as diffusers structures them: the loaded model ({@link
 * dev.sdjvm.pipeline.PipelineComponents}: artifacts, invocation pools, the UNet runner), the stages the tasks share
 * ({@link dev.sdjvm.pipeline.DiffusionStages}: check inputs, encode the prompt, prepare timesteps and latents, the
 * denoising loop, decode, encode an image), one sibling per task ({@link dev.sdjvm.pipeline.TextToImagePipeline},
 * {@link dev.sdjvm.pipeline.ImageToImagePipeline}, {@link dev.sdjvm.pipeline.InpaintPipeline}) chosen by {@link dev.sdjvm.pipeline.Pipelines}, and the backend
 * choice ({@link dev.sdjvm.pipeline.BackendSelection}, the only place that names the concrete backends). Not exported:
 * the facade {@code StableDiffusion} is the API. Does not depend on the facade's package: requests and
 * results cross as {@link dev.sdjvm.pipeline.Request} and {@link dev.sdjvm.pipeline.Result}.
 */
package dev.sdjvm.pipeline;
