package dev.sdjvm.server;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;
import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection (a Netty handler after the HTTP codec): collects a request's head and body within their
 * timeouts, hands the complete request to the {@link InferenceServer}, writes its one response, and tells the server
 * when the client goes away. Everything here runs on the connection's event loop except {@link Exchange#respond},
 * which may be called from any thread.
 *
 * <p>Phases: IDLE (no byte of a request yet; closed after the idle timeout), HEAD (bytes arrived, the head is not
 * complete; 408 after the header timeout), BODY (head read; 408 after the body timeout), PROCESSING (the server
 * has the request; no timeout here, the request's own deadline applies).
 */
final class HttpConnection extends ChannelInboundHandlerAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(HttpConnection.class);

    enum Phase { IDLE, HEAD, BODY, PROCESSING, CLOSED }

    private final InferenceServer server;
    private final ServerConfig config;
    private final Connections connections;
    volatile Phase phase = Phase.IDLE;
    volatile long lastActivityNanos = System.nanoTime();
    Channel channel;
    private ScheduledFuture<?> timer;
    private HttpRequest head;
    private ByteArrayOutputStream body;
    private boolean discarding;
    private volatile Exchange current;

    HttpConnection(InferenceServer server, ServerConfig config, Connections connections) {
        this.server = server;
        this.config = config;
        this.connections = connections;
    }

    /** Placed before the HTTP codec: notes that bytes of a request arrived (IDLE to HEAD). */
    final class ByteWatcher extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            lastActivityNanos = System.nanoTime();
            if (phase == Phase.IDLE && msg instanceof ByteBuf b && b.isReadable()) {
                enter(Phase.HEAD, config.headerTimeout());
            }
            ctx.fireChannelRead(msg);
        }
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        channel = ctx.channel();
        enter(Phase.IDLE, config.idleTimeout());
        connections.opened(this);
        ctx.fireChannelActive();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        phase = Phase.CLOSED;
        cancelTimer();
        connections.closed(this);
        Exchange ex = current;
        if (ex != null) {
            ex.clientGone();
        }
        ctx.fireChannelInactive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        try {
            if (msg instanceof HttpRequest req) {
                onHead(ctx, req);
            }
            if (msg instanceof HttpContent c) {
                onContent(ctx, c);
            }
        } catch (Throwable t) {
            // the request boundary on the event loop: nothing may escape to kill the connection silently
            Exchange ex = current;
            String id = ex != null ? ex.id : InferenceServer.newRequestId();
            LOG.error("request {}: unexpected error reading the request", id, t);
            if (ex != null) {
                ex.respondError(new HttpError(500, null, "internal error"), true);
            } else {
                ctx.close();
            }
        } finally {
            ReferenceCountUtil.release(msg);
        }
    }

    private void onHead(ChannelHandlerContext ctx, HttpRequest req) {
        Exchange previous = current;
        if (discarding || previous != null && !previous.isDone()) {
            // HTTP pipelining (a request before the previous answer) is not supported: close after that answer
            if (previous != null) {
                previous.closeAfter = true;
            }
            discarding = true;
            return;
        }
        Exchange ex = new Exchange(this, req);
        current = ex;
        if (req.decoderResult().isFailure()) {
            Throwable cause = req.decoderResult().cause();
            int status = cause instanceof TooLongFrameException ? 431 : 400;
            discarding = true;
            enter(Phase.PROCESSING, null);
            ex.respondError(new HttpError(status, null, status == 431 ? "request line or headers too large"
                    : "malformed HTTP request"), true);
            return;
        }
        head = req;
        body = null;
        enter(Phase.BODY, config.bodyTimeout());
        long declared = HttpUtil.getContentLength(req, -1L);
        if (declared > config.maxBodyBytes()) {
            discarding = true;
            enter(Phase.PROCESSING, null);
            ex.respondError(new HttpError(413, null, "body of " + declared + " bytes is over the limit of "
                    + config.maxBodyBytes() + " (server --max-body)"), true);
            return;
        }
        if (HttpUtil.is100ContinueExpected(req)) {
            ctx.writeAndFlush(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.CONTINUE));
        }
    }

    private void onContent(ChannelHandlerContext ctx, HttpContent c) {
        if (discarding || head == null) {
            return;
        }
        ByteBuf buf = c.content();
        if (buf.isReadable()) {
            if (body == null) {
                body = new ByteArrayOutputStream(Math.min(buf.readableBytes(), 1 << 16));
            }
            if ((long) body.size() + buf.readableBytes() > config.maxBodyBytes()) {
                discarding = true;
                enter(Phase.PROCESSING, null);
                current.respondError(new HttpError(413, null, "body is over the limit of " + config.maxBodyBytes()
                        + " bytes (server --max-body)"), true);
                return;
            }
            byte[] chunk = new byte[buf.readableBytes()];
            buf.readBytes(chunk);
            body.write(chunk, 0, chunk.length);
        }
        if (c instanceof LastHttpContent) {
            enter(Phase.PROCESSING, null);
            byte[] bytes = body == null ? new byte[0] : body.toByteArray();
            HttpRequest req = head;
            head = null;
            body = null;
            server.handle(current, req, bytes);
        }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        LOG.debug("connection {}: {}", ctx.channel().remoteAddress(), cause.toString());
        ctx.close();
    }

    /** Moves to a phase and (re)arms its timeout (none for null). Event loop only. */
    private void enter(Phase p, Duration timeout) {
        cancelTimer();
        phase = p;
        lastActivityNanos = System.nanoTime();
        if (timeout != null && channel != null) {
            timer = channel.eventLoop().schedule(() -> onTimeout(p), timeout.toNanos(), TimeUnit.NANOSECONDS);
        }
    }

    private void cancelTimer() {
        if (timer != null) {
            timer.cancel(false);
            timer = null;
        }
    }

    private void onTimeout(Phase p) {
        if (phase != p) {
            return;
        }
        server.timedOut(p);
        if (p == Phase.IDLE) {
            channel.close();
            return;
        }
        Exchange ex = current != null && p == Phase.BODY ? current : new Exchange(this, null);
        current = ex;
        discarding = true;
        enter(Phase.PROCESSING, null);
        String what = p == Phase.HEAD ? "the request head was not complete within "
                + config.headerTimeout().toMillis() / 1000.0 + " s (server --header-timeout)"
                : "the request body was not complete within " + config.bodyTimeout().toMillis() / 1000.0
                + " s (server --body-timeout)";
        ex.respondError(new HttpError(408, null, what), true);
    }

    /** Called on the event loop once a response is written. */
    private void afterResponse(Exchange ex, boolean close) {
        if (close || !channel.isActive()) {
            channel.close();
            return;
        }
        if (current != ex) {
            return;  // the next request has started already
        }
        current = null;
        if (discarding) {
            channel.close();
            return;
        }
        enter(Phase.IDLE, config.idleTimeout());
    }

    /** Set once this connection is chosen to be closed for the connection cap. */
    final java.util.concurrent.atomic.AtomicBoolean evicting = new java.util.concurrent.atomic.AtomicBoolean();

    /** True when the connection has no request in progress or is stuck reading one (it may be evicted). */
    boolean evictable() {
        Phase p = phase;
        return !evicting.get() && (p == Phase.IDLE || p == Phase.HEAD || p == Phase.BODY);
    }

    /**
     * One request on this connection and its single response. {@link #respond} may be called from any thread; only
     * the first call writes.
     */
    static final class Exchange {
        final String id;
        final HttpConnection conn;
        final HttpRequest request;
        final long startNanos = System.nanoTime();
        private final java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        volatile boolean gone;
        volatile boolean closeAfter;
        volatile Runnable onClientGone;
        volatile String path = "other";

        Exchange(HttpConnection conn, HttpRequest request) {
            this.conn = conn;
            this.request = request;
            String uri = request == null ? "" : request.uri();
            int q = uri.indexOf('?');
            String p = q >= 0 ? uri.substring(0, q) : uri;
            if (p.equals("/ping") || p.equals("/invocations") || p.equals("/metrics")) {
                this.path = p;
            }
            String given = request == null ? null : request.headers().get("X-Request-Id");
            this.id = given != null && given.matches("[A-Za-z0-9._:-]{1,64}") ? given : InferenceServer.newRequestId();
        }

        String method() {
            return request == null ? "-" : request.method().name();
        }

        boolean isDone() {
            return done.get();
        }

        boolean keepAlive() {
            return request != null && HttpUtil.isKeepAlive(request) && !closeAfter;
        }

        void clientGone() {
            gone = true;
            if (done.compareAndSet(false, true)) {
                Runnable r = onClientGone;
                if (r != null) {
                    r.run();
                }
            }
        }

        void respondError(HttpError e, boolean close) {
            if (close) {
                closeAfter = true;
            }
            conn.server.sendError(this, e);
        }

        /** Writes the response (once); returns false if a response was already sent or the client is gone. */
        boolean respond(int status, String contentType, byte[] body, java.util.Map<String, String> headers) {
            if (!done.compareAndSet(false, true)) {
                return false;
            }
            FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(status),
                    Unpooled.wrappedBuffer(body));
            r.headers().set(HttpHeaderNames.CONTENT_TYPE, contentType);
            r.headers().set(HttpHeaderNames.CONTENT_LENGTH, body.length);
            if (headers != null) {
                headers.forEach((k, v) -> r.headers().set(k, v));
            }
            boolean head = request != null && "HEAD".equals(request.method().name());
            if (head) {
                r.content().clear();
            }
            boolean keep = keepAlive();
            if (keep) {
                if (request.protocolVersion().equals(HttpVersion.HTTP_1_0)) {
                    r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
                }
            } else {
                r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
            }
            Channel ch = conn.channel;
            // write from the event loop, so that the listener runs before the connection reads the next request
            Runnable write = () -> ch.writeAndFlush(r).addListener((ChannelFutureListener) f ->
                    conn.afterResponse(this, !keep || !f.isSuccess()));
            if (ch.eventLoop().inEventLoop()) {
                write.run();
            } else {
                ch.eventLoop().execute(write);
            }
            return true;
        }
    }
}
