package dev.sdjvm.cli;

import dev.sdjvm.scheduler.Schedulers;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/** The scheduler names {@code --scheduler} accepts, for picocli's help ({@code ${COMPLETION-CANDIDATES}}). */
public final class SchedulerNames implements Iterable<String> {
    @Override
    public Iterator<String> iterator() {
        List<String> names = new ArrayList<>();
        try {
            names.addAll(Schedulers.names());
        } catch (RuntimeException | LinkageError e) {
            // help must render even if the scheduler registry cannot
        }
        names.add("config");
        return names.iterator();
    }
}
