/** Images: 8-bit RGB results, conversion from decoder output exactly as diffusers' image processor. */
package dev.sdjvm.image;
