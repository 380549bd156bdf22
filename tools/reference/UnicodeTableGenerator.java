package dev.sdjvm.tokenizer;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.List;

/**
 * Dev tool, not part of the build: compares {@link UnicodeProps} with a dump of CPython's properties
 * ({@code tools/reference/unicode_dump.py}) and prints the patch tables of {@code UnicodeData14.java} plus a count of
 * the remaining differences. It sits in the tokenizer's package to reach the package-private {@code UnicodeProps},
 * so it is compiled next to the library's classes (after {@code mvn compile}):
 *
 * <pre>
 * /usr/bin/python3 tools/reference/unicode_dump.py &gt; /tmp/dump.txt
 * javac -cp target/classes -d /tmp/unicode-gen tools/reference/UnicodeTableGenerator.java
 * java -cp target/classes:/tmp/unicode-gen dev.sdjvm.tokenizer.UnicodeTableGenerator /tmp/dump.txt
 * </pre>
 */
public final class UnicodeTableGenerator {
    private static final String[] CATS = new String[31];

    static {
        CATS[Character.UNASSIGNED] = "Cn";
        CATS[Character.UPPERCASE_LETTER] = "Lu";
        CATS[Character.LOWERCASE_LETTER] = "Ll";
        CATS[Character.TITLECASE_LETTER] = "Lt";
        CATS[Character.MODIFIER_LETTER] = "Lm";
        CATS[Character.OTHER_LETTER] = "Lo";
        CATS[Character.NON_SPACING_MARK] = "Mn";
        CATS[Character.ENCLOSING_MARK] = "Me";
        CATS[Character.COMBINING_SPACING_MARK] = "Mc";
        CATS[Character.DECIMAL_DIGIT_NUMBER] = "Nd";
        CATS[Character.LETTER_NUMBER] = "Nl";
        CATS[Character.OTHER_NUMBER] = "No";
        CATS[Character.SPACE_SEPARATOR] = "Zs";
        CATS[Character.LINE_SEPARATOR] = "Zl";
        CATS[Character.PARAGRAPH_SEPARATOR] = "Zp";
        CATS[Character.CONTROL] = "Cc";
        CATS[Character.FORMAT] = "Cf";
        CATS[Character.PRIVATE_USE] = "Co";
        CATS[Character.SURROGATE] = "Cs";
        CATS[Character.DASH_PUNCTUATION] = "Pd";
        CATS[Character.START_PUNCTUATION] = "Ps";
        CATS[Character.END_PUNCTUATION] = "Pe";
        CATS[Character.CONNECTOR_PUNCTUATION] = "Pc";
        CATS[Character.OTHER_PUNCTUATION] = "Po";
        CATS[Character.MATH_SYMBOL] = "Sm";
        CATS[Character.CURRENCY_SYMBOL] = "Sc";
        CATS[Character.MODIFIER_SYMBOL] = "Sk";
        CATS[Character.OTHER_SYMBOL] = "So";
        CATS[Character.INITIAL_QUOTE_PUNCTUATION] = "Pi";
        CATS[Character.FINAL_QUOTE_PUNCTUATION] = "Pf";
    }

    private UnicodeTableGenerator() {
    }

    static String javaName(String cat) {
        for (int i = 0; i < CATS.length; i++) {
            if (cat.equals(CATS[i])) {
                return javaConst(i);
            }
        }
        throw new IllegalArgumentException(cat);
    }

    private static String javaConst(int type) {
        return "(byte) " + type;
    }

    private static String hex(String s) {
        StringBuilder b = new StringBuilder();
        s.codePoints().forEach(cp -> {
            if (b.length() > 0) {
                b.append('.');
            }
            b.append(Integer.toHexString(cp).toUpperCase());
        });
        return b.toString();
    }

    public static void main(String[] args) throws IOException {
        List<int[]> catRanges = new ArrayList<>();     // start, end, type
        List<int[]> lower = new ArrayList<>();
        List<Integer> casedExtra = new ArrayList<>();
        int otherDiffs = 0;
        String header;
        try (BufferedReader r = Files.newBufferedReader(Path.of(args[0]), StandardCharsets.UTF_8)) {
            header = r.readLine();
            String line;
            while ((line = r.readLine()) != null) {
                String[] f = line.split(" ");
                int cp = Integer.parseInt(f[0], 16);
                String pyCat = f[1];
                String jCat = CATS[UnicodeProps.category(cp)];
                if (!pyCat.equals(jCat)) {
                    int type = -1;
                    for (int i = 0; i < CATS.length; i++) {
                        if (pyCat.equals(CATS[i])) {
                            type = i;
                        }
                    }
                    int[] last = catRanges.isEmpty() ? null : catRanges.get(catRanges.size() - 1);
                    if (last != null && last[1] == cp - 1 && last[2] == type) {
                        last[1] = cp;
                    } else {
                        catRanges.add(new int[] {cp, cp, type});
                    }
                }
                String s = new String(Character.toChars(cp));
                StringBuilder lb = new StringBuilder();
                UnicodeProps.appendLower(s, 0, s.length(), lb);
                if (!hex(lb.toString()).equals(f[2])) {
                    String[] parts = f[2].split("\\.");
                    if (parts.length == 1) {
                        lower.add(new int[] {cp, Integer.parseInt(parts[0], 16)});
                    } else {
                        System.err.println("multi-char lower not handled: " + line);
                        otherDiffs++;
                    }
                }
                boolean ign = UnicodeProps.isCaseIgnorable(cp);
                String jSig = ign ? "I" : UnicodeProps.isCased(cp) ? "C" : "N";
                if (!jSig.equals(f[3])) {
                    if (f[3].equals("C") && jSig.equals("N")) {
                        casedExtra.add(cp);
                    } else {
                        System.err.println("sigma class differs: java " + jSig + " python " + line);
                        otherDiffs++;
                    }
                }
                boolean sp = UnicodeProps.isPythonSpace(cp);
                if (sp != f[4].equals("1")) {
                    System.err.println("isspace differs: " + line);
                    otherDiffs++;
                }
                if (!(cp >= 0xD800 && cp <= 0xDFFF) && !hex(Normalizer.normalize(s, Normalizer.Form.NFC)).equals(f[5])) {
                    System.err.println("NFC differs: " + line);
                    otherDiffs++;
                }
            }
        }
        System.out.println("    // generated by UnicodeTableGenerator from: " + header.substring(2));
        StringBuilder a = new StringBuilder();
        StringBuilder b = new StringBuilder();
        StringBuilder c = new StringBuilder();
        for (int[] rg : catRanges) {
            a.append(String.format("0x%X, ", rg[0]));
            b.append(String.format("0x%X, ", rg[1]));
            c.append(rg[2]).append(", ");
        }
        System.out.println("    static final int[] CATEGORY_START = {" + a + "};");
        System.out.println("    static final int[] CATEGORY_END = {" + b + "};");
        System.out.println("    static final byte[] CATEGORY_TYPE = {" + c + "};");
        StringBuilder l1 = new StringBuilder();
        StringBuilder l2 = new StringBuilder();
        for (int[] p : lower) {
            l1.append(String.format("0x%X, ", p[0]));
            l2.append(String.format("0x%X, ", p[1]));
        }
        System.out.println("    static final int[] LOWER_CP = {" + l1 + "};");
        System.out.println("    static final int[] LOWER_TO = {" + l2 + "};");
        StringBuilder ce = new StringBuilder();
        for (int cp : casedExtra) {
            ce.append(String.format("0x%X, ", cp));
        }
        System.out.println("    static final int[] CASED_EXTRA = {" + ce + "};");
        System.err.println("category ranges " + catRanges.size() + ", lower " + lower.size() + ", cased extra "
                + casedExtra.size() + ", other differences " + otherDiffs);
    }
}
