/**
 * Small programs to copy: {@link dev.sdjvm.examples.QuickStart} (the README's quick start, the embedded model),
 * {@link dev.sdjvm.examples.FullRequest} (every request option, progress and cancel),
 * {@link dev.sdjvm.examples.ImageToImage} (image-to-image and inpainting, on a model with a VAE encoder) and
 * {@link dev.sdjvm.examples.ImageService} (the library inside a long-running, multi-threaded service). The tests
 * run each of them, and check that the README quotes them word for word.
 */
package dev.sdjvm.examples;
