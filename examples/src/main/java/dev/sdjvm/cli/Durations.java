package dev.sdjvm.cli;

import java.time.Duration;
import java.util.Locale;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** Parses {@code 60s}, {@code 500ms}, {@code 2m}, {@code 1h} or plain seconds ({@code 60}, {@code 1.5}). */
public final class Durations implements ITypeConverter<Duration> {
    @Override
    public Duration convert(String value) {
        return parse(value);
    }

    /** Parses a duration; throws picocli's TypeConversionException with the reason. */
    public static Duration parse(String value) {
        String v = value.trim().toLowerCase(Locale.ROOT);
        double factor;
        String num;
        if (v.endsWith("ms")) {
            factor = 1e-3;
            num = v.substring(0, v.length() - 2);
        } else if (v.endsWith("s")) {
            factor = 1;
            num = v.substring(0, v.length() - 1);
        } else if (v.endsWith("m")) {
            factor = 60;
            num = v.substring(0, v.length() - 1);
        } else if (v.endsWith("h")) {
            factor = 3600;
            num = v.substring(0, v.length() - 1);
        } else {
            factor = 1;
            num = v;
        }
        try {
            double secs = Double.parseDouble(num.trim()) * factor;
            if (!(secs > 0) || Double.isInfinite(secs)) {
                throw new TypeConversionException("'" + value + "' is not a positive duration");
            }
            return Duration.ofNanos((long) (secs * 1e9));
        } catch (NumberFormatException e) {
            throw new TypeConversionException("'" + value + "' is not a duration (e.g. 60s, 500ms, 2m)");
        }
    }
}
