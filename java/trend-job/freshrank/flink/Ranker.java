package freshrank.flink;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

/**
 * Merges the partitions' top N of each tick into the top N (parallelism 1) once the watermark says every
 * partition has reported it; one JSON line per tick: end (ms), posts of the slice, latest slice end, rows.
 */
public class Ranker extends AbstractStreamOperator<String> implements OneInputStreamOperator<Ranked, String> {
    private final long slideMs;
    private final int topN;
    private transient TreeMap<Long, ArrayList<Ranked>> rows;
    private transient TreeMap<Long, Ranked> marks;
    private transient ObjectMapper json;
    private transient ListState<byte[]> saved;

    public Ranker(long slideMs, int topN) {
        this.slideMs = slideMs;
        this.topN = topN;
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        rows = new TreeMap<>();
        marks = new TreeMap<>();
        json = new ObjectMapper();
        saved = context.getOperatorStateStore()
                .getListState(new ListStateDescriptor<>("ranks", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
        for (byte[] blob : saved.get()) {
            try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(blob))) {
                for (Object o : (List<?>) in.readObject()) {
                    processElement(new StreamRecord<>((Ranked) o));
                }
            }
        }
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        ArrayList<Ranked> all = new ArrayList<>(marks.values());
        rows.values().forEach(all::addAll);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(all);
        }
        saved.update(List.of(bytes.toByteArray()));
    }

    @Override
    public void processElement(StreamRecord<Ranked> record) {
        Ranked r = record.getValue();
        if (r.mark) {
            marks.put(r.tick, r);
        } else {
            rows.computeIfAbsent(r.tick, t -> new ArrayList<>()).add(r);
        }
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        long ts = mark.getTimestamp();
        while (!marks.isEmpty() && (ts == Long.MAX_VALUE || marks.firstKey() * slideMs <= ts)) {
            Ranked tick = marks.pollFirstEntry().getValue();
            ArrayList<Ranked> found = rows.remove(tick.tick);
            List<Map<String, Object>> top = new ArrayList<>();
            if (found != null) {
                found.sort(Ranked::order);
                for (Ranked r : found.subList(0, Math.min(topN, found.size()))) {
                    Map<String, Object> row = new LinkedHashMap<>();
                    row.put("key", r.key);
                    row.put("spelling", r.spelling);
                    row.put("c", r.c);
                    row.put("p", r.p);
                    row.put("authors", r.authors);
                    row.put("authored", r.authored);
                    row.put("evidence", r.x);
                    row.put("expected", r.lam);
                    row.put("score", r.z);
                    top.add(row);
                }
            }
            Map<String, Object> window = new LinkedHashMap<>();
            window.put("end", tick.tick * slideMs);
            window.put("posts", tick.posts);
            window.put("last", tick.last * slideMs);
            window.put("rows", top);
            output.collect(new StreamRecord<>(json.writeValueAsString(window)));
        }
        super.processWatermark(mark);
    }
}
