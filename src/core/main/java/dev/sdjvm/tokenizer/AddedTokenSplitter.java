package dev.sdjvm.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Splits text on added tokens like transformers' {@code Trie.split} (leftmost match, longest first) followed by the
 * {@code lstrip}/{@code rstrip}/{@code single_word} handling of {@code PreTrainedTokenizer.tokenize}.
 */
final class AddedTokenSplitter {
    private final Map<String, AddedToken> byContent;
    private final Map<Character, AddedToken[]> byFirstChar;  // candidates, longest first
    private final boolean anyFlags;

    AddedTokenSplitter(List<AddedToken> tokens) {
        byContent = new HashMap<>();
        for (AddedToken t : tokens) {
            byContent.put(t.content(), t);
        }
        Map<Character, List<AddedToken>> groups = new HashMap<>();
        boolean flags = false;
        for (AddedToken t : byContent.values()) {
            groups.computeIfAbsent(t.content().charAt(0), k -> new ArrayList<>()).add(t);
            flags |= t.lstrip() || t.rstrip() || t.singleWord();
        }
        anyFlags = flags;
        byFirstChar = new HashMap<>();
        for (Map.Entry<Character, List<AddedToken>> e : groups.entrySet()) {
            AddedToken[] arr = e.getValue().toArray(new AddedToken[0]);
            Arrays.sort(arr, Comparator.comparingInt((AddedToken t) -> t.content().length()).reversed()
                    .thenComparing(AddedToken::content));
            byFirstChar.put(e.getKey(), arr);
        }
    }

    AddedToken byContent(String s) {
        return byContent.get(s);
    }

    /** The segment list handler: plain text pieces and added tokens, in order. */
    interface Sink {
        void text(String piece);

        void added(AddedToken token);
    }

    /** Splits {@code text} and reports the non-empty pieces to {@code sink}. */
    void split(String text, Sink sink) {
        List<String> parts = null;
        int start = 0;
        int n = text.length();
        for (int i = 0; i < n; ) {
            AddedToken[] cands = byFirstChar.isEmpty() ? null : byFirstChar.get(text.charAt(i));
            AddedToken hit = null;
            if (cands != null) {
                for (AddedToken t : cands) {
                    if (text.startsWith(t.content(), i)) {
                        hit = t;
                        break;
                    }
                }
            }
            if (hit == null) {
                i++;
                continue;
            }
            if (parts == null) {
                parts = new ArrayList<>();
            }
            if (i > start) {
                parts.add(text.substring(start, i));
            }
            parts.add(hit.content());
            i += hit.content().length();
            start = i;
        }
        if (parts == null) {                 // no added token: the common case, no copies
            if (!text.isEmpty()) {
                sink.text(text);
            }
            return;
        }
        if (start < n) {
            parts.add(text.substring(start));
        }
        if (anyFlags) {
            applyFlags(parts);
        }
        for (String p : parts) {
            if (p.isEmpty()) {
                continue;
            }
            AddedToken t = byContent.get(p);
            if (t != null) {
                sink.added(t);
            } else {
                sink.text(p);
            }
        }
    }

    /** transformers' rstrip / lstrip / single_word pass over the split list (mutating neighbours in place). */
    private void applyFlags(List<String> tokens) {
        for (int i = 0; i < tokens.size(); i++) {
            String token = tokens.get(i);
            AddedToken t = byContent.get(token);
            if (t == null) {
                continue;
            }
            String left = i > 0 ? tokens.get(i - 1) : null;
            String right = i < tokens.size() - 1 ? tokens.get(i + 1) : null;
            if (t.rstrip() && right != null && !right.isEmpty()) {
                tokens.set(i + 1, lstripPython(right));
            }
            if (t.lstrip() && left != null && !left.isEmpty()) {
                tokens.set(i - 1, rstripPython(left));
            }
            if (t.singleWord()) {
                if (left != null && !left.isEmpty() && left.charAt(left.length() - 1) != ' ') {
                    tokens.set(i - 1, tokens.get(i - 1) + token);
                    tokens.set(i, "");
                } else if (right != null && !right.isEmpty() && right.charAt(0) != ' ') {
                    tokens.set(i + 1, token + tokens.get(i + 1));
                    tokens.set(i, "");
                }
            }
        }
    }

    static String lstripPython(String s) {
        int i = 0;
        while (i < s.length()) {
            int cp = s.codePointAt(i);
            if (!UnicodeProps.isPythonSpace(cp)) {
                break;
            }
            i += Character.charCount(cp);
        }
        return s.substring(i);
    }

    static String rstripPython(String s) {
        int e = s.length();
        while (e > 0) {
            int cp = s.codePointBefore(e);
            if (!UnicodeProps.isPythonSpace(cp)) {
                break;
            }
            e -= Character.charCount(cp);
        }
        return s.substring(0, e);
    }
}
