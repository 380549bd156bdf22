package dev.sdjvm.backend.neuron;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A torch release number {@code major.minor.patch}, parsed leniently from the spellings met in practice:
 * {@code 2.5.1}, {@code 2.5.1+cpu}, {@code 2.7.0a0+gitabc}, and bytedeco's Maven version {@code 2.10.0-1.5.13}
 * (torch version, dash, JavaCPP version).
 */
public record TorchVersion(int major, int minor, int patch) implements Comparable<TorchVersion> {
    private static final Pattern P = Pattern.compile("^\\s*v?(\\d+)\\.(\\d+)(?:\\.(\\d+))?");

    public TorchVersion {
        if (major < 0 || minor < 0 || patch < 0) {
            throw new IllegalArgumentException("negative version component");
        }
    }

    /**
     * Parses the leading {@code major.minor[.patch]} of {@code s} (patch 0 when absent).
     *
     * @throws IllegalArgumentException when {@code s} does not start with a version number
     */
    public static TorchVersion parse(String s) {
        Matcher m = s == null ? null : P.matcher(s);
        if (m == null || !m.find()) {
            throw new IllegalArgumentException("not a torch version: " + s);
        }
        return new TorchVersion(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)),
                m.group(3) == null ? 0 : Integer.parseInt(m.group(3)));
    }

    /** {@code major.minor}. */
    public String series() {
        return major + "." + minor;
    }

    /** True when major and minor are equal (same release series). */
    public boolean sameSeries(TorchVersion o) {
        return major == o.major && minor == o.minor;
    }

    @Override
    public int compareTo(TorchVersion o) {
        int c = Integer.compare(major, o.major);
        if (c == 0) {
            c = Integer.compare(minor, o.minor);
        }
        return c != 0 ? c : Integer.compare(patch, o.patch);
    }

    @Override
    public String toString() {
        return major + "." + minor + "." + patch;
    }
}
