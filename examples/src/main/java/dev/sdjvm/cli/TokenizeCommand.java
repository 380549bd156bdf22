package dev.sdjvm.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.tokenizer.ClipTokenizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code sd tokenize}: the CLIP token ids the text encoder receives, as JSON arrays. */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = {"Prints the text encoder's input ids of each prompt as a JSON array, one per line: "
                + "<|startoftext|>, the BPE ids (at most 75), <|endoftext|>, padding to 77.",
                "With --raw: only the BPE ids, without special tokens, truncation or padding."})
public final class TokenizeCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Spec
    CommandSpec spec;

    @Parameters(arity = "0..*", paramLabel = "PROMPT", description = "Prompts, one array each.")
    List<String> prompts;

    @Option(names = "--jsonl", paramLabel = "FILE",
            description = "Read prompts as JSON strings, one per line ('-' = stdin), so they may hold newlines and tabs; "
                    + "prints one array per line in the same order (after the positional prompts).")
    String jsonl;

    @Option(names = "--raw", description = "BPE ids only: no <|startoftext|>/<|endoftext|>, no truncation, no padding.")
    boolean raw;

    @ArgGroup(exclusive = true)
    Source source;

    static final class Source {
        @Option(names = {"-m", "--model"}, paramLabel = "DIR", description = "Use DIR/tokenizer of a model directory.")
        Path model;
        @Option(names = "--tokenizer", paramLabel = "DIR", description = "A tokenizer directory (vocab.json, merges.txt).")
        Path tokenizer;
    }

    @Option(names = "--verbose", description = "Log at INFO level.")
    boolean verbose;

    @Override
    public Integer call() throws IOException {
        if ((prompts == null || prompts.isEmpty()) && jsonl == null) {
            throw new ParameterException(spec.commandLine(), "give at least one PROMPT or --jsonl FILE");
        }
        Path dir;
        if (source != null && source.tokenizer != null) {
            dir = source.tokenizer;
        } else if (source != null && source.model != null) {
            dir = source.model.resolve("tokenizer");
        } else {
            dir = StableDiffusion.defaultModelPath().resolve("tokenizer");
        }
        if (!Files.isDirectory(dir)) {
            throw new Main.UserException(Main.ERROR, "tokenizer directory not found: " + dir);
        }
        ClipTokenizer tok = ClipTokenizer.load(dir);
        PrintWriter out = spec.commandLine().getOut();
        if (prompts != null) {
            for (String p : prompts) {
                print(out, tok, p);
            }
        }
        if (jsonl != null) {
            try (BufferedReader in = "-".equals(jsonl)
                    ? new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))
                    : Files.newBufferedReader(Path.of(jsonl), StandardCharsets.UTF_8)) {
                String line;
                int n = 0;
                while ((line = in.readLine()) != null) {
                    n++;
                    JsonNode node;
                    try {
                        node = JSON.readTree(line);
                    } catch (JsonProcessingException e) {
                        throw new Main.UserException(Main.USAGE, "--jsonl " + jsonl + " line " + n
                                + ": not JSON: " + e.getOriginalMessage());
                    }
                    if (node == null || !node.isTextual()) {
                        throw new Main.UserException(Main.USAGE, "--jsonl " + jsonl + " line " + n
                                + ": expected a JSON string, got " + (node == null ? "an empty line" : node.getNodeType()));
                    }
                    print(out, tok, node.textValue());
                }
            }
        }
        out.flush();
        return Main.OK;
    }

    private void print(PrintWriter out, ClipTokenizer tok, String prompt) throws JsonProcessingException {
        int[] ids = raw ? tok.encode(prompt) : tok.tokenize(prompt).inputIds();
        out.println(JSON.writeValueAsString(ids));
        out.flush();
    }
}
