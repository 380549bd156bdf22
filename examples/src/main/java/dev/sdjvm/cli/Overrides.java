package dev.sdjvm.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.LinkedHashMap;
import java.util.Map;

/** {@code key=value} scheduler overrides with JSON-typed values ({@code true}, {@code 0.5}, {@code "leading"}). */
public final class Overrides {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Overrides() {
    }

    /**
     * Parses the values: valid JSON gives its type (boolean, number, string, array, null); anything else is taken as a
     * plain string ({@code timestep_spacing=trailing}).
     */
    public static Map<String, Object> parse(Map<String, String> raw) {
        Map<String, Object> out = new LinkedHashMap<>();
        if (raw == null) {
            return out;
        }
        for (var e : raw.entrySet()) {
            String key = e.getKey().trim();
            if (key.isEmpty()) {
                throw new IllegalArgumentException("empty key in --scheduler-override (expected key=value)");
            }
            out.put(key, value(e.getValue()));
        }
        return out;
    }

    static Object value(String v) {
        if (v == null) {
            return null;
        }
        try {
            return JSON.readValue(v, Object.class);
        } catch (JsonProcessingException ex) {
            return v;
        }
    }
}
