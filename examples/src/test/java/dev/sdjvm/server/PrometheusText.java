package dev.sdjvm.server;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A reader of the Prometheus text exposition format (0.0.4) for tests: every sample line must parse (name, labels
 * with escaped values, a number), and samples are looked up by name and a subset of their labels, whatever the
 * label order.
 */
final class PrometheusText {
    private static final Pattern SAMPLE = Pattern.compile(
            "([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\\{((?:[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\]|\\\\.)*\",?)*)\\})? "
                    + "(-?(?:[0-9.]+(?:[eE][+-]?[0-9]+)?|NaN|[+-]?Inf))");
    private static final Pattern LABEL = Pattern.compile("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\"");

    record Sample(String name, Map<String, String> labels, double value) {
    }

    final String text;
    final List<Sample> samples = new ArrayList<>();
    final Map<String, String> types = new LinkedHashMap<>();

    PrometheusText(String text) {
        this.text = text;
        for (String line : text.split("\n")) {
            if (line.isEmpty()) {
                continue;
            }
            if (line.startsWith("# TYPE ")) {
                String[] p = line.split(" ");
                types.put(p[2], p[3]);
                continue;
            }
            if (line.startsWith("#")) {
                continue;
            }
            Matcher m = SAMPLE.matcher(line);
            if (!m.matches()) {
                throw new AssertionError("not a Prometheus sample line: " + line);
            }
            Map<String, String> labels = new LinkedHashMap<>();
            if (m.group(2) != null) {
                Matcher l = LABEL.matcher(m.group(2));
                while (l.find()) {
                    labels.put(l.group(1), l.group(2));
                }
            }
            String v = m.group(3);
            double d = v.endsWith("Inf") ? (v.startsWith("-") ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY)
                    : Double.parseDouble(v);
            samples.add(new Sample(m.group(1), labels, d));
        }
    }

    /** The samples named {@code name} whose labels include {@code pairs} ("key", "value", ...). */
    List<Sample> find(String name, String... pairs) {
        List<Sample> out = new ArrayList<>();
        for (Sample s : samples) {
            if (!s.name.equals(name)) {
                continue;
            }
            boolean all = true;
            for (int i = 0; i < pairs.length; i += 2) {
                all &= pairs[i + 1].equals(s.labels.get(pairs[i]));
            }
            if (all) {
                out.add(s);
            }
        }
        return out;
    }

    /** The one sample's value; fails (with the text) when there is none or several. */
    double value(String name, String... pairs) {
        List<Sample> f = find(name, pairs);
        if (f.size() != 1) {
            throw new AssertionError(f.size() + " samples " + name + " " + String.join(",", pairs) + " in:\n" + text);
        }
        return f.get(0).value;
    }

    /** The one sample's value, or 0 when there is none (a counter not counted yet). */
    double valueOrZero(String name, String... pairs) {
        return find(name, pairs).isEmpty() ? 0 : value(name, pairs);
    }
}
