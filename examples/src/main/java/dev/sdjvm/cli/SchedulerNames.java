package dev.sdjvm.cli;

import dev.sdjvm.scheduler.Schedulers;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * The scheduler names {@code --scheduler} shows in its help ({@code ${COMPLETION-CANDIDATES}}): one short name per
 * scheduler and setting, then {@code config}. The other spellings and the diffusers class names are accepted too;
 * {@code sd schedulers} lists them all.
 */
public final class SchedulerNames implements Iterable<String> {
    @Override
    public Iterator<String> iterator() {
        List<String> names = new ArrayList<>();
        try {
            for (Schedulers.Alias a : Schedulers.aliases()) {
                names.add(a.name());
            }
        } catch (RuntimeException | LinkageError e) {
            // help must render even if the scheduler registry cannot
        }
        names.add("config");
        return names.iterator();
    }
}
