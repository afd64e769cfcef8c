package freshrank.flink;

import java.io.File;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.serialization.SimpleStringSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.KafkaSourceBuilder;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.fs.Path;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

/**
 * The trend job as a Flink DataStream job: {@code java freshrank.flink.TrendJob SPEC.json} (the launcher's
 * {@code FlinkJobSpec}). Posts (a JSONL file or a Kafka topic) are parsed, sliced, hash-partitioned by tag into
 * {@link TagWindows}, and merged by {@link Ranker}; each fired tick is printed as one line
 * {@code FRESHRANK <json>} on stdout ({@link Emit}) for the launcher, which writes the trend store.
 */
public final class TrendJob {
    public static final String MARKER = "FRESHRANK\t";

    private TrendJob() {}

    /** The window subtask of a tag (the same rule routes rows and filters restored state). */
    static int partition(String key, int parallelism) {
        return Math.floorMod(key.hashCode(), parallelism);
    }

    public static void main(String[] args) throws Exception {
        JsonNode spec = new ObjectMapper().readTree(new File(args[0]));
        JsonNode trends = spec.get("trends");
        int parallelism = spec.get("parallelism").asInt();
        long slideMs = trends.get("slide_seconds").asLong() * 1000;
        int n = (int) (trends.get("window_seconds").asLong() * 1000 / slideMs);
        int topN = trends.get("top_n").asInt();
        long latenessMs = trends.get("allowed_lateness_seconds").asLong() * 1000;
        boolean live = spec.hasNonNull("kafka") && !spec.get("bounded").asBoolean();

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(configuration(spec));
        env.setParallelism(parallelism);
        DataStream<String> lines = source(env, spec);
        WatermarkStrategy<Post> strategy = WatermarkStrategy.<Post>forBoundedOutOfOrderness(Duration.ofMillis(latenessMs))
                .withTimestampAssigner((post, previous) -> post.ms);
        if (live) {
            strategy = strategy.withIdleness(Duration.ofSeconds(5));
        }
        Set<String> blocked = new HashSet<>();
        spec.get("blocked_keys").forEach(k -> blocked.add(k.asText()));
        List<String> helper = new ArrayList<>();
        spec.get("helper").forEach(h -> helper.add(h.asText()));
        helper.add(new File(args[0]).getAbsolutePath());
        SingleOutputStreamOperator<TagRow> rows = lines
                .flatMap(new ParsePosts(spec.get("class_table").asText(), helper, blocked))
                .name("parse")
                .assignTimestampsAndWatermarks(strategy)
                .name("event time")
                .transform("slices", TypeInformation.of(TagRow.class), new SliceOperator(slideMs));
        DataStream<VolumeRow> volumes = rows.getSideOutput(SliceOperator.VOLUMES);
        Score score = new Score(
                trends.get("prior_share").asDouble(), trends.get("posts_per_author").asLong(), trends.get("min_z").asDouble());
        TagWindows windows = new TagWindows(slideMs, n, topN, trends.get("min_count").asLong(),
                trends.get("min_authors").asLong(), score);
        DataStream<String> ranked = rows
                .partitionCustom(TrendJob::partition, row -> row.key)
                .connect(volumes.broadcast())
                .transform("windows", TypeInformation.of(Ranked.class), windows)
                .transform("top-n", Types.STRING, new Ranker(slideMs, topN))
                .setParallelism(1);
        ranked.process(new Emit(storeCommand(spec, helper))).name("emit").setParallelism(1).sinkTo(new DiscardingSink<>()).setParallelism(1);
        env.execute("freshrank-trends");
    }

    /** The helper in store mode when the job writes the trend store itself ({@code store_in_job}), else null. */
    private static List<String> storeCommand(JsonNode spec, List<String> helper) {
        if (!spec.path("store_in_job").asBoolean() || !spec.hasNonNull("store_url")) {
            return null;
        }
        List<String> command = new ArrayList<>(helper);
        command.add("--store");
        return command;
    }

    private static Configuration configuration(JsonNode spec) {
        Configuration conf = new Configuration();
        conf.setString("pipeline.name", "freshrank-trends");
        if (spec.hasNonNull("checkpoint_interval_s")) {
            conf.setString("execution.checkpointing.interval", spec.get("checkpoint_interval_s").asText() + "s");
            conf.setString("execution.checkpointing.mode", "EXACTLY_ONCE");
            conf.setString("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION");
        }
        if (spec.hasNonNull("checkpoint_dir")) {
            conf.setString("execution.checkpointing.dir", spec.get("checkpoint_dir").asText());
        }
        if (spec.hasNonNull("restore_from")) {
            conf.setString("execution.state-recovery.path", spec.get("restore_from").asText());
        }
        return conf;
    }

    private static DataStream<String> source(StreamExecutionEnvironment env, JsonNode spec) {
        if (spec.hasNonNull("kafka")) {
            JsonNode kafka = spec.get("kafka");
            KafkaSourceBuilder<String> builder = KafkaSource.<String>builder()
                    .setBootstrapServers(kafka.get("bootstrap").asText())
                    .setTopics(kafka.get("topic").asText())
                    .setGroupId(kafka.get("group_id").asText())
                    .setStartingOffsets(OffsetsInitializer.earliest())
                    .setValueOnlyDeserializer(new SimpleStringSchema());
            if (spec.get("bounded").asBoolean()) {
                builder.setBounded(OffsetsInitializer.latest());
            }
            return env.fromSource(builder.build(), WatermarkStrategy.noWatermarks(), "kafka");
        }
        FileSource<String> files = FileSource
                .forRecordStreamFormat(new TextLineInputFormat(), new Path(new File(spec.get("input_path").asText()).toURI()))
                .build();
        return env.fromSource(files, WatermarkStrategy.noWatermarks(), "file");
    }
}
