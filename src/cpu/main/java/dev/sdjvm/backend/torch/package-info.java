/**
 * libtorch through JavaCPP ({@code org.bytedeco:pytorch}): loading, TorchScript modules with explicit native
 * lifetimes, tensor conversions. Every native object is owned by a {@link org.bytedeco.javacpp.PointerScope} or a
 * closeable owner.
 */
package dev.sdjvm.backend.torch;
