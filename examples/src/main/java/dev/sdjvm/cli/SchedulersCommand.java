package dev.sdjvm.cli;

import dev.sdjvm.scheduler.Schedulers;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code sd schedulers}: every name {@code --scheduler} accepts, with what it creates. */
@Command(name = "schedulers", mixinStandardHelpOptions = true,
        description = {"Lists the scheduler names --scheduler accepts (case-insensitive): each name with its other "
                + "spellings, the diffusers class it creates and the settings it applies before "
                + "--scheduler-override; then the diffusers class names and 'config'."})
public final class SchedulersCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        String row = "%-20s %-32s %-45s %s%n";
        out.printf(Locale.ROOT, row, "NAME", "CLASS", "SETTINGS", "ALSO");
        for (Schedulers.Alias a : Schedulers.aliases()) {
            out.printf(Locale.ROOT, row, a.name(), a.className(), settings(a.preset()), String.join(", ", a.spellings()));
        }
        out.println();
        out.println("diffusers class names: " + String.join(", ", Schedulers.classNames()));
        out.println("config: the class the model's scheduler/scheduler_config.json names (_class_name)");
        out.println("default: DPMSolverMultistepScheduler (DPM++ 2M) from the model's config, as AWS's deployment");
        out.flush();
        return Main.OK;
    }

    private static String settings(Map<String, Object> preset) {
        StringBuilder sb = new StringBuilder();
        for (var e : new TreeMap<>(preset).entrySet()) {
            sb.append(sb.length() == 0 ? "" : ", ").append(e.getKey()).append('=').append(e.getValue());
        }
        return sb.length() == 0 ? "-" : sb.toString();
    }
}
