/**
 * The {@code sd} command line ({@code bin/sd}): {@code generate}, {@code tokenize}, {@code info}, {@code serve},
 * {@code bench}. Built on picocli; exit codes 0 (ok), 2 (usage or invalid request, the message names the field),
 * 1 (other errors). Also holds the image writers (PNG with A1111-style {@code parameters} text, JPEG) that the
 * server shares.
 */
package dev.sdjvm.cli;
