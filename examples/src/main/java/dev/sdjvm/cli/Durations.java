package dev.sdjvm.cli;

import java.time.Duration;
import java.util.Locale;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * Parses {@code 60s}, {@code 500ms}, {@code 2m}, {@code 1h}, {@code 2d} or plain seconds ({@code 60}, {@code 1.5}), up to
 * {@link #MAX} (longer waits overflow the timers that use them). The number is plain decimal (Java's {@code 2d}/{@code 2f}
 * float suffixes, hex and {@code NaN} are not numbers here).
 */
public final class Durations implements ITypeConverter<Duration> {
    /** The longest duration accepted: 365 days. */
    public static final Duration MAX = Duration.ofDays(365);
    private static final java.util.regex.Pattern NUMBER =
            java.util.regex.Pattern.compile("[0-9]+(\\.[0-9]*)?([e][+-]?[0-9]+)?|\\.[0-9]+([e][+-]?[0-9]+)?");

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
        } else if (v.endsWith("d")) {
            factor = 86400;
            num = v.substring(0, v.length() - 1);
        } else {
            factor = 1;
            num = v;
        }
        if (!NUMBER.matcher(num.trim()).matches()) {
            throw new TypeConversionException("'" + value + "' is not a duration (e.g. 60s, 500ms, 2m, 1h, 2d)");
        }
        double secs = Double.parseDouble(num.trim()) * factor;
        if (!(secs > 0)) {
            throw new TypeConversionException("'" + value + "' is not a positive duration");
        }
        if (secs > MAX.getSeconds()) {
            throw new TypeConversionException("'" + value + "' is longer than the longest duration accepted, "
                    + MAX.toDays() + " days");
        }
        return Duration.ofNanos(Math.round(secs * 1e9));
    }
}
