package dev.sdjvm.tokenizer;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.errors.ModelLoadException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Reads and validates the four files of a Hugging Face CLIP {@code tokenizer/} directory. */
final class TokenizerFiles {
    static final String VOCAB = "vocab.json";
    static final String MERGES = "merges.txt";
    static final String SPECIAL_TOKENS_MAP = "special_tokens_map.json";
    static final String CONFIG = "tokenizer_config.json";

    /** transformers' CLIPTokenizer reads at most this many merges ({@code [1 : 49152 - 256 - 2 + 1]}). */
    static final int MAX_MERGES = 49152 - 256 - 2;
    /** Used when tokenizer_config.json has no {@code model_max_length} (CLIP's context length). */
    static final int DEFAULT_MAX_LENGTH = 77;
    private static final ObjectMapper JSON = new ObjectMapper();
    /** vocab.json has ~49k distinct keys: do not intern/canonicalise them (that made parsing ~20x slower). */
    private static final com.fasterxml.jackson.core.JsonFactory VOCAB_JSON = com.fasterxml.jackson.core.JsonFactory
            .builder().disable(com.fasterxml.jackson.core.JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
            .disable(com.fasterxml.jackson.core.JsonFactory.Feature.INTERN_FIELD_NAMES).build();

    /** A special token as written in the files: content plus AddedToken flags. */
    record TokenSpec(String content, boolean lstrip, boolean rstrip, boolean singleWord) {
    }

    final Map<String, Integer> vocab;          // insertion order = file order
    final List<String[]> merges;               // [left, right], rank = index
    final Map<String, TokenSpec> specials;     // bos_token, eos_token, unk_token, pad_token (resolved)
    final List<TokenSpec> additionalSpecials;
    final Map<Integer, TokenSpec> addedTokensDecoder;
    final Map<Integer, Boolean> addedTokenSpecial;
    final int maxLength;
    final boolean doLowerCase;

    private TokenizerFiles(Path dir) {
        Path vocabFile = dir.resolve(VOCAB);
        Path mergesFile = dir.resolve(MERGES);
        Path mapFile = dir.resolve(SPECIAL_TOKENS_MAP);
        Path configFile = dir.resolve(CONFIG);
        vocab = readVocab(vocabFile);
        merges = readMerges(mergesFile);
        JsonNode config = readJsonObject(configFile);
        JsonNode map = readJsonObject(mapFile);

        specials = new LinkedHashMap<>();
        additionalSpecials = new ArrayList<>();
        // tokenizer_config.json first; special_tokens_map.json overrides it (transformers' from_pretrained order)
        for (String key : new String[] {"bos_token", "eos_token", "unk_token", "pad_token"}) {
            TokenSpec fromConfig = tokenSpec(config.get(key), configFile, key);
            TokenSpec fromMap = tokenSpec(map.get(key), mapFile, key);
            TokenSpec chosen = fromMap != null ? fromMap : fromConfig;
            if (chosen != null) {
                specials.put(key, chosen);
            }
        }
        JsonNode extra = map.has("additional_special_tokens") ? map.get("additional_special_tokens")
                : config.get("additional_special_tokens");
        Path extraFile = map.has("additional_special_tokens") ? mapFile : configFile;
        if (extra != null && !extra.isNull()) {
            if (!extra.isArray()) {
                throw new ModelLoadException(extraFile, "additional_special_tokens is not a list");
            }
            for (JsonNode e : extra) {
                additionalSpecials.add(tokenSpec(e, extraFile, "additional_special_tokens"));
            }
        }
        for (String key : new String[] {"bos_token", "eos_token", "pad_token"}) {
            if (!specials.containsKey(key)) {
                throw new ModelLoadException(mapFile, "no " + key + " (neither here nor in " + CONFIG + ")");
            }
        }

        addedTokensDecoder = new LinkedHashMap<>();
        addedTokenSpecial = new LinkedHashMap<>();
        JsonNode decoder = config.get("added_tokens_decoder");
        if (decoder != null && !decoder.isNull()) {
            if (!decoder.isObject()) {
                throw new ModelLoadException(configFile, "added_tokens_decoder is not an object");
            }
            for (Map.Entry<String, JsonNode> e : decoder.properties()) {
                int id;
                try {
                    id = Integer.parseInt(e.getKey());
                } catch (NumberFormatException ex) {
                    throw new ModelLoadException(configFile, "added_tokens_decoder key is not an id: " + e.getKey());
                }
                TokenSpec spec = tokenSpec(e.getValue(), configFile, "added_tokens_decoder." + id);
                addedTokensDecoder.put(id, spec);
                addedTokenSpecial.put(id, e.getValue().path("special").asBoolean(false));
            }
        }

        JsonNode maxLen = config.get("model_max_length");
        if (maxLen == null || maxLen.isNull()) {
            maxLength = DEFAULT_MAX_LENGTH;
        } else {
            if (!maxLen.isNumber() || maxLen.asDouble() != Math.rint(maxLen.asDouble())
                    || maxLen.asDouble() < 2 || maxLen.asDouble() > 1_000_000) {
                throw new ModelLoadException(configFile,
                        "model_max_length must be an integer in [2, 1000000], got " + maxLen);
            }
            maxLength = maxLen.asInt();
        }
        JsonNode lower = config.get("do_lower_case");
        if (lower != null && !lower.isNull() && !lower.isBoolean()) {
            throw new ModelLoadException(configFile, "do_lower_case is not a boolean: " + lower);
        }
        doLowerCase = lower == null || lower.isNull() || lower.booleanValue();
    }

    static TokenizerFiles read(Path dir) {
        if (dir == null) {
            throw new ModelLoadException(null, "tokenizer directory is null");
        }
        if (!Files.isDirectory(dir)) {
            throw new ModelLoadException(dir, "tokenizer directory does not exist");
        }
        return new TokenizerFiles(dir);
    }

    private static TokenSpec tokenSpec(JsonNode n, Path file, String key) {
        if (n == null || n.isNull()) {
            return null;
        }
        if (n.isTextual()) {
            if (n.textValue().isEmpty()) {
                throw new ModelLoadException(file, key + " is empty");
            }
            return new TokenSpec(n.textValue(), false, false, false);
        }
        if (n.isObject() && n.path("content").isTextual() && !n.path("content").textValue().isEmpty()) {
            return new TokenSpec(n.get("content").textValue(), n.path("lstrip").asBoolean(false),
                    n.path("rstrip").asBoolean(false), n.path("single_word").asBoolean(false));
        }
        throw new ModelLoadException(file, key + " is neither a string nor an AddedToken object: " + n);
    }

    private static byte[] readBytes(Path file) {
        try {
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new ModelLoadException(file, "missing");
        } catch (IOException e) {
            throw new ModelLoadException(file, "cannot be read: " + e.getMessage(), e);
        }
    }

    private static JsonNode readJsonObject(Path file) {
        byte[] bytes = readBytes(file);
        JsonNode n;
        try {
            n = JSON.readTree(bytes);
        } catch (IOException e) {
            throw new ModelLoadException(file, "not valid JSON: " + e.getMessage(), e);
        }
        if (n == null || !n.isObject()) {
            throw new ModelLoadException(file, "not a JSON object");
        }
        return n;
    }

    private static Map<String, Integer> readVocab(Path file) {
        byte[] bytes = readBytes(file);
        Map<String, Integer> vocab = new LinkedHashMap<>(1 << 17);
        try (JsonParser p = VOCAB_JSON.createParser(bytes)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new ModelLoadException(file, "not a JSON object of token -> id");
            }
            JsonToken t;
            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                String token = p.currentName();
                if (p.nextToken() != JsonToken.VALUE_NUMBER_INT) {
                    throw new ModelLoadException(file, "id of " + quote(token) + " is not an integer");
                }
                long id = p.getLongValue();
                if (id < 0 || id >= (1 << 24)) {
                    throw new ModelLoadException(file, "id of " + quote(token) + " out of range: " + id);
                }
                vocab.remove(token);                 // json.load keeps the last duplicate, at its position
                vocab.put(token, (int) id);
            }
            if (t != JsonToken.END_OBJECT || p.nextToken() != null) {
                throw new ModelLoadException(file, "not a JSON object of token -> id");
            }
        } catch (IOException e) {
            throw new ModelLoadException(file, "not valid JSON: " + e.getMessage(), e);
        }
        if (vocab.isEmpty()) {
            throw new ModelLoadException(file, "empty vocabulary");
        }
        java.util.BitSet seen = new java.util.BitSet();
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            if (seen.get(e.getValue())) {
                throw new ModelLoadException(file, "id " + e.getValue() + " is used by more than one token");
            }
            seen.set(e.getValue());
        }
        return vocab;
    }

    private static List<String[]> readMerges(Path file) {
        byte[] bytes = readBytes(file);
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new ModelLoadException(file, "not valid UTF-8", e);
        }
        // Python: read().strip().split("\n")[1 : 48895]
        String stripped = stripPython(text);
        String[] lines = stripped.split("\n", -1);
        List<String[]> merges = new ArrayList<>(Math.min(lines.length, MAX_MERGES));
        for (int i = 1; i < lines.length && merges.size() < MAX_MERGES; i++) {
            String[] parts = splitPython(lines[i]);
            if (parts.length != 2) {
                throw new ModelLoadException(file, "line " + (i + 1) + ": expected two symbols, got "
                        + quote(lines[i]));
            }
            merges.add(parts);
        }
        if (merges.isEmpty()) {
            throw new ModelLoadException(file, "no merges (expected a '#version' line followed by 'a b' lines)");
        }
        return merges;
    }

    static String stripPython(String s) {
        return AddedTokenSplitter.rstripPython(AddedTokenSplitter.lstripPython(s));
    }

    /** Python {@code str.split()} (no argument): runs of whitespace separate, no empty parts. */
    static String[] splitPython(String s) {
        List<String> out = new ArrayList<>(2);
        int i = 0;
        int n = s.length();
        while (i < n) {
            while (i < n && UnicodeProps.isPythonSpace(s.codePointAt(i))) {
                i += Character.charCount(s.codePointAt(i));
            }
            int start = i;
            while (i < n && !UnicodeProps.isPythonSpace(s.codePointAt(i))) {
                i += Character.charCount(s.codePointAt(i));
            }
            if (i > start) {
                out.add(s.substring(start, i));
            }
        }
        return out.toArray(new String[0]);
    }

    private static String quote(String s) {
        return "'" + (s.length() > 60 ? s.substring(0, 60) + "..." : s) + "'";
    }
}
