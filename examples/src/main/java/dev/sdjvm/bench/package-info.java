/**
 * {@code sd bench}: latency percentiles, throughput, cost per 10 000 images, seconds and Java overhead per step,
 * load time and peak memory, in-process or against a running server over HTTP (as AWS measured with
 * {@code invoke_endpoint}). Output: a Markdown table and JSON.
 */
package dev.sdjvm.bench;
