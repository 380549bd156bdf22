/**
 * Pure-Java CLIP byte-level BPE tokenizer, id-for-id equal to what diffusers feeds the Stable Diffusion text
 * encoder (transformers' slow {@code CLIPTokenizer} without ftfy).
 *
 * <p>Entry point: {@link dev.sdjvm.tokenizer.ClipTokenizer#load(java.nio.file.Path)} on a Hugging Face
 * {@code tokenizer/} directory, then {@link dev.sdjvm.tokenizer.ClipTokenizer#tokenize(String)} for the fixed-length
 * {@code input_ids} and {@link dev.sdjvm.tokenizer.ClipTokenizer#encode(String)} for raw BPE ids.
 */
package dev.sdjvm.tokenizer;
