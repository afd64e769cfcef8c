package freshrank.flink;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichFlatMapFunction;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.util.Collector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * JSON lines to posts: time and hashtags as the replay reads them. The Java fast path handles what is certain
 * without Python ({@link Hashtags}, {@link Times}); the rest goes to the Python helper. Lines that are not JSON
 * objects, or lack a text or a readable time, are skipped (the first 20 per subtask logged).
 */
public class ParsePosts extends RichFlatMapFunction<String, Post> {
    private static final Logger LOG = LoggerFactory.getLogger(ParsePosts.class);
    private static final int MAX_LOGGED = 20;
    private static final String[] NONE = new String[0];
    private final String tablePath;
    private final List<String> helperCommand;
    private final Set<String> blocked;
    private transient Hashtags hashtags;
    private transient PythonHelper helper;
    private transient ObjectMapper json;
    private transient long rejected;
    public long helped;

    public ParsePosts(String tablePath, List<String> helperCommand, Set<String> blocked) {
        this.tablePath = tablePath;
        this.helperCommand = helperCommand;
        this.blocked = blocked;
    }

    @Override
    public void open(OpenContext context) throws Exception {
        hashtags = Hashtags.load(tablePath);
        json = new ObjectMapper();
    }

    private PythonHelper helper() throws Exception {
        if (helper == null) {
            helper = new PythonHelper(helperCommand);
        }
        return helper;
    }

    @Override
    public void close() throws Exception {
        if (helper != null) {
            helper.close();
        }
    }

    @Override
    public void flatMap(String line, Collector<Post> out) throws Exception {
        JsonNode post;
        try {
            post = json.readTree(line);
        } catch (Exception e) {
            reject(line, "not JSON");
            return;
        }
        if (post == null || !post.isObject()) {
            reject(line, "not a JSON object");
            return;
        }
        JsonNode text = post.get("text"), createdAt = post.get("created_at"), user = post.get("user");
        if (text == null || !text.isTextual() || createdAt == null || createdAt.isNull()) {
            reject(line, "missing text or created_at");
            return;
        }
        long ms = time(createdAt);
        if (ms <= 0) {
            reject(line, "unreadable created_at");
            return;
        }
        String author = user != null && user.isTextual() ? user.asText() : null;
        List<String> found = hashtags.find(text.asText());
        if (found == null) {
            helped++;
            JsonNode pairs = helper().tags(text.asText());
            String[] keys = new String[pairs.size()], spellings = new String[pairs.size()];
            for (int i = 0; i < pairs.size(); i++) {
                keys[i] = pairs.get(i).get(0).asText();
                spellings[i] = pairs.get(i).get(1).asText();
            }
            out.collect(new Post(ms, author, keys, spellings));
            return;
        }
        if (found.isEmpty()) {
            out.collect(new Post(ms, author, NONE, NONE));
            return;
        }
        List<String> keys = new ArrayList<>(found.size()), spellings = new ArrayList<>(found.size());
        for (String tag : found) {
            String key = tag.toLowerCase(java.util.Locale.ROOT);
            if (!blocked.contains(key)) {
                keys.add(key);
                spellings.add(tag);
            }
        }
        out.collect(new Post(ms, author, keys.toArray(NONE), spellings.toArray(NONE)));
    }

    private long time(JsonNode createdAt) throws Exception {
        if (createdAt.isTextual()) {
            long ms = Times.iso(createdAt.asText());
            return ms != Times.UNKNOWN ? ms : helper().time(createdAt.asText());
        }
        if (createdAt.isIntegralNumber() && createdAt.canConvertToLong()) {
            long ms = Times.epoch(createdAt.asLong());
            return ms != Times.UNKNOWN ? ms : helper().time(createdAt.asText());
        }
        if (createdAt.isNumber()) {
            return helper().time(createdAt.asText());
        }
        return 0;
    }

    private void reject(String line, String reason) {
        if (++rejected <= MAX_LOGGED) {
            LOG.warn("skipping a post ({}): {}", reason, line.length() > 80 ? line.substring(0, 80) : line);
        }
    }
}
