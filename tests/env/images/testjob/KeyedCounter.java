package org.apache.flink.operator.testjob;

import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * A small, slow, stateful streaming job for the operator's end-to-end tests.
 *
 * <p>An unbounded {@code fromSequence} source, throttled to a few records per second, keyed by
 * {@code value % keys}; a keyed {@link ValueState} counts the records per key and every count is
 * printed (TaskManager stdout / log). Every operator has a stable {@code uid}, so the job restores
 * from savepoints taken by an earlier run. Compiles unchanged against Flink 1.20 and 2.x (only the
 * DataStream API that both have: fromSequence, keyBy, RichMapFunction, ValueState, print).
 *
 * <p>Arguments (all optional): {@code --records-per-second N} (default 4), {@code --keys N}
 * (default 4), {@code --checkpoint-interval MS} (default 5000; 0 disables checkpointing).
 */
public final class KeyedCounter {

    private KeyedCounter() {}

    public static void main(String[] args) throws Exception {
        long recordsPerSecond = longArg(args, "--records-per-second", 4);
        long keys = Math.max(1, longArg(args, "--keys", 4));
        long checkpointInterval = longArg(args, "--checkpoint-interval", 5000);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        if (checkpointInterval > 0) {
            env.enableCheckpointing(checkpointInterval);
        }
        long sleepMillis = recordsPerSecond > 0 ? Math.max(1, 1000 / recordsPerSecond) : 0;

        env.fromSequence(0, Long.MAX_VALUE)
                .uid("sequence-source")
                .name("sequence-source")
                .setParallelism(1)
                .map(new Throttle(sleepMillis))
                .uid("throttle")
                .name("throttle")
                .setParallelism(1)
                .keyBy(v -> v % keys, Types.LONG)
                .map(new CountPerKey(keys))
                .uid("count-per-key")
                .name("count-per-key")
                .print()
                .uid("print-sink")
                .name("print-sink");

        env.execute("KeyedCounter");
    }

    private static long longArg(String[] args, String name, long dflt) {
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals(name)) {
                return Long.parseLong(args[i + 1]);
            }
        }
        return dflt;
    }

    /** Passes records through, sleeping between them (keeps the job slow and cheap). */
    public static final class Throttle extends RichMapFunction<Long, Long> {
        private static final long serialVersionUID = 1L;
        private final long sleepMillis;

        Throttle(long sleepMillis) {
            this.sleepMillis = sleepMillis;
        }

        @Override
        public Long map(Long value) throws Exception {
            if (sleepMillis > 0) {
                Thread.sleep(sleepMillis);
            }
            return value;
        }
    }

    /** Counts records per key in keyed ValueState; emits (key, count). */
    public static final class CountPerKey extends RichMapFunction<Long, Tuple2<Long, Long>> {
        private static final long serialVersionUID = 1L;
        private final long keys;
        private transient ValueState<Long> count;

        CountPerKey(long keys) {
            this.keys = keys;
        }

        @Override
        public Tuple2<Long, Long> map(Long value) throws Exception {
            if (count == null) {
                count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
            }
            Long current = count.value();
            long next = (current == null ? 0L : current) + 1;
            count.update(next);
            return Tuple2.of(value % keys, next);
        }
    }
}
