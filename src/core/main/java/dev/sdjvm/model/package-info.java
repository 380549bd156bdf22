/**
 * The model directory layout (AWS's Inferentia2 {@code sd2_512_root}), its configs, and our export tools' manifest.
 * Pure Java: reading a model directory loads no native code.
 */
package dev.sdjvm.model;
