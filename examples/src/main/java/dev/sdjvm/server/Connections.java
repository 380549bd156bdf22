package dev.sdjvm.server;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The open connections and their cap. A connection beyond {@code max} makes room by closing the connection that
 * has been idle (or stuck sending a request) the longest: a flood of idle or slow clients then costs its own
 * connections, never the health check's. When every connection has a request being processed, the new one is
 * closed instead.
 */
final class Connections {
    private static final Logger LOG = LoggerFactory.getLogger(Connections.class);
    private final int max;
    private final Set<HttpConnection> open = ConcurrentHashMap.newKeySet();
    private final AtomicInteger count = new AtomicInteger();
    final LongAdder evicted = new LongAdder();
    final LongAdder refused = new LongAdder();

    Connections(int max) {
        this.max = max;
    }

    int count() {
        return count.get();
    }

    void opened(HttpConnection c) {
        open.add(c);
        if (count.incrementAndGet() <= max) {
            return;
        }
        HttpConnection victim = null;
        for (int attempt = 0; attempt < 4 && victim == null; attempt++) {
            for (HttpConnection o : open) {
                if (o == c || !o.evictable()) {
                    continue;
                }
                // idle ones first, then the oldest activity
                if (victim == null || rank(o) < rank(victim)
                        || rank(o) == rank(victim) && o.lastActivityNanos < victim.lastActivityNanos) {
                    victim = o;
                }
            }
            if (victim != null && !victim.evicting.compareAndSet(false, true)) {
                victim = null;  // another new connection took it: look again
            }
        }
        if (victim == null) {
            refused.increment();
            LOG.warn("{} connections open, none idle: closing the new one from {}", count.get(),
                    c.channel.remoteAddress());
            c.channel.close();
            return;
        }
        evicted.increment();
        HttpConnection v = victim;
        LOG.debug("{} connections open: closing the one idle the longest ({}, {})", count.get(),
                v.channel.remoteAddress(), v.phase);
        v.channel.eventLoop().execute(() -> {
            HttpConnection.Phase p = v.phase;
            if (p == HttpConnection.Phase.IDLE || p == HttpConnection.Phase.HEAD || p == HttpConnection.Phase.BODY) {
                v.channel.close();
            } else {
                v.evicting.set(false);  // a request arrived meanwhile: keep it
            }
        });
    }

    private static int rank(HttpConnection c) {
        return c.phase == HttpConnection.Phase.IDLE ? 0 : 1;
    }

    void closed(HttpConnection c) {
        if (open.remove(c)) {
            count.decrementAndGet();
        }
    }

    void closeAll() {
        for (HttpConnection c : open) {
            if (c.channel != null) {
                c.channel.close();
            }
        }
    }
}
