package dev.sdjvm.cli;

import dev.sdjvm.errors.GenerationCancelledException;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.errors.StableDiffusionException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine;

/**
 * {@code sd}: the command line of stable-diffusion-jvm. Run it through {@code bin/sd}.
 *
 * <p>Exit codes: 0 success; 2 usage error or invalid request (the message names the option or field); 1 any other
 * error (model cannot be loaded, backend failure, I/O). Every error prints one line, no stack trace;
 * {@code --verbose} or {@code SDJVM_DEBUG=1} adds the full message and stack trace.
 */
@Command(name = "sd", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Stable Diffusion 2.1 from the JVM: text-to-image, tokenizer, model info, scheduler names, an "
                + "HTTP inference server (SageMaker contract) and a benchmark.",
        subcommands = {GenerateCommand.class, TokenizeCommand.class, InfoCommand.class, SchedulersCommand.class,
                ServeCommand.class, BenchCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    /** Exit code for success. */
    public static final int OK = 0;
    /** Exit code for errors other than usage. */
    public static final int ERROR = 1;
    /** Exit code for usage errors and invalid requests. */
    public static final int USAGE = 2;

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(),
                "missing command: one of generate, tokenize, info, schedulers, serve, bench");
    }

    public static void main(String[] args) {
        configureLogging(args);
        PrintWriter out = new PrintWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), true);
        PrintWriter err = new PrintWriter(new OutputStreamWriter(System.err, StandardCharsets.UTF_8), true);
        int code = run(args, out, err);
        out.flush();
        err.flush();
        System.exit(code);
    }

    /** Runs a command with the given streams and returns its exit code (for tests and embedding). */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        CommandLine cl = commandLine(out, err, java.util.Arrays.asList(args).contains("--verbose"));
        return cl.execute(args);
    }

    /** The configured picocli command line (stack traces only with {@code SDJVM_DEBUG}). */
    public static CommandLine commandLine(PrintWriter out, PrintWriter err) {
        return commandLine(out, err, false);
    }

    /**
     * The configured picocli command line. Every error is one line on stderr ({@code error: ...}: the first line of
     * the message, so a native message's backtrace is not printed); {@code verbose} (or {@code SDJVM_DEBUG}) adds
     * the full message and stack trace.
     */
    public static CommandLine commandLine(PrintWriter out, PrintWriter err, boolean verbose) {
        CommandLine cl = new CommandLine(new Main());
        cl.setOut(out);
        cl.setErr(err);
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setParameterExceptionHandler((ex, args) -> {
            CommandLine c = ex.getCommandLine();
            PrintWriter e = c.getErr();
            e.println("error: " + ex.getMessage());
            String name = c.getCommandSpec().qualifiedName();
            e.println("Try '" + name + " --help' for more information.");
            e.flush();
            return USAGE;
        });
        cl.setExecutionExceptionHandler((ex, c, parseResult) -> {
            PrintWriter e = c.getErr();
            int code;
            String msg;
            if (ex instanceof InvalidRequestException) {
                code = USAGE;
                msg = "invalid " + ex.getMessage();
            } else if (ex instanceof ModelLoadException || ex instanceof GenerationCancelledException
                    || ex instanceof StableDiffusionException) {
                code = ERROR;
                msg = ex.getMessage();
            } else if (ex instanceof UserException) {
                code = ((UserException) ex).exitCode;
                msg = ex.getMessage();
            } else if (ex instanceof java.io.IOException || ex instanceof UncheckedIOException) {
                code = ERROR;
                msg = "I/O error: " + ex.getMessage();
            } else {
                code = ERROR;
                msg = "unexpected error: " + ex.getClass().getSimpleName()
                        + (ex.getMessage() == null ? "" : ": " + ex.getMessage());
            }
            String line = firstLine(msg);
            boolean details = verbose || System.getenv("SDJVM_DEBUG") != null;
            e.println("error: " + line + (!details && !line.equals(msg) ? " (--verbose for the details)" : ""));
            if (details) {
                ex.printStackTrace(e);
            }
            e.flush();
            return code;
        });
        return cl;
    }

    /** The first line of a message, at most 500 characters. */
    static String firstLine(String msg) {
        if (msg == null) {
            return "";
        }
        String line = msg.strip();
        int nl = line.indexOf('\n');
        if (nl >= 0) {
            line = line.substring(0, nl).strip();
        }
        return line.length() > 500 ? line.substring(0, 500) + "..." : line;
    }

    /** An error to report as one line with an exit code. */
    public static final class UserException extends RuntimeException {
        private static final long serialVersionUID = 1L;
        final int exitCode;

        public UserException(int exitCode, String message) {
            super(message);
            this.exitCode = exitCode;
        }
    }

    private static boolean isServe(String[] args) {
        for (String a : args) {
            if (!a.startsWith("-")) {
                return "serve".equals(a);
            }
        }
        return false;
    }

    /**
     * Logback (src/main/resources/logback.xml) through system properties set before the first log line: WARN for
     * one-shot commands, INFO with timestamps for {@code serve} and with {@code --verbose}; text, or JSON lines with
     * {@code --log-format json} or {@code SDJVM_LOG_FORMAT=json}. A {@code -Dsdjvm.log.*} on the java command line
     * wins.
     */
    static void configureLogging(String[] args) {
        boolean verbose = false;
        for (String a : args) {
            verbose |= "--verbose".equals(a);
        }
        boolean serve = isServe(args);
        setDefault("sdjvm.log.level", serve || verbose ? "info" : "warn");
        setDefault("sdjvm.log.time", serve ? "%d{yyyy-MM-dd'T'HH:mm:ss.SSSZ} " : "");
        String format = logFormat(args, System.getenv("SDJVM_LOG_FORMAT"));
        if (format != null) {
            setDefault("sdjvm.log.format", format);
        }
    }

    /**
     * The log format asked for: {@code --log-format X} or {@code --log-format=X} on the command line, else the
     * environment's value; null for neither or for a value other than text and json (picocli then reports the
     * option's error, and the log stays text).
     */
    static String logFormat(String[] args, String env) {
        String v = env;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--log-format") && i + 1 < args.length) {
                v = args[i + 1];
            } else if (args[i].startsWith("--log-format=")) {
                v = args[i].substring("--log-format=".length());
            }
        }
        if (v == null) {
            return null;
        }
        v = v.trim().toLowerCase(java.util.Locale.ROOT);
        return v.equals("text") || v.equals("json") ? v : null;
    }

    private static void setDefault(String key, String value) {
        if (System.getProperty(key) == null) {
            System.setProperty(key, value);
        }
    }

    /** The version Maven wrote into {@code version.properties}, and the libtorch on the class path. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            Properties p = new Properties();
            try (InputStream in = Main.class.getResourceAsStream("version.properties")) {
                if (in != null) {
                    p.load(in);
                }
            } catch (IOException e) {
                // reported as unknown below
            }
            return new String[] {"sd (stable-diffusion-jvm) " + p.getProperty("version", "unknown"),
                    "libtorch: org.bytedeco:pytorch " + dev.sdjvm.StableDiffusion.libtorchVersion() + " (built with "
                            + p.getProperty("pytorch.version", "unknown") + ")",
                    "JVM: ${java.version} (${java.vendor} ${java.vm.name} ${java.vm.version})",
                    "OS: ${os.name} ${os.version} ${os.arch}"};
        }
    }
}
