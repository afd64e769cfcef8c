package freshrank.flink;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The hashtags of a text, exactly as {@code freshrank.trends.extract.extract_hashtags} finds them, for the texts
 * where that is certain without Python's {@code html.unescape} and {@code str.casefold} (a port of the compiled
 * scanner, {@code native/src/lib.rs}): no {@code &amp;}, no fullwidth sign, ASCII hashtags. Returns null for
 * every other text (the Python extractor decides). Unicode classes come from the table the Python side builds
 * from the very patterns it matches with ({@code extract.class_table}).
 */
public final class Hashtags {
    static final int WORD = 1, SPACE = 2, BLOCKS = 4, PREFIX = 8, LETTER = 16, REST = 32;
    static final int TABLE_LEN = 0x110000;
    static final int MAX_TAG_CHARS = 100;
    private final byte[] table;

    public Hashtags(byte[] table) {
        if (table.length != TABLE_LEN) {
            throw new IllegalArgumentException("the class table has " + table.length + " entries, not " + TABLE_LEN);
        }
        this.table = table;
    }

    public static Hashtags load(String path) throws IOException {
        return new Hashtags(Files.readAllBytes(Path.of(path)));
    }

    private int cls(int codePoint) {
        return table[codePoint];
    }

    /** The hashtags (each ASCII-case-folded tag once, in order), or null when Python must read the text. */
    public List<String> find(String text) {
        boolean wide = text.indexOf('\uFF03') >= 0;
        if (!wide && text.indexOf('#') < 0) {
            return List.of();
        }
        if (wide || text.indexOf('&') >= 0) {
            return null;
        }
        String source = text.contains("://") || text.contains("www.") ? stripUrls(text) : text;
        List<String> tags = findTags(source);
        if (tags == null) {
            return null;
        }
        List<String> kept = new ArrayList<>(tags.size());
        for (String tag : tags) {
            if (tag.length() <= MAX_TAG_CHARS && kept.stream().noneMatch(tag::equalsIgnoreCase)) {
                kept.add(tag);
            }
        }
        return kept;
    }

    private static boolean asciiAlpha(int c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }

    private static boolean schemeChar(char c) {
        return asciiAlpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '.' || c == '-';
    }

    /** The URL pattern's match starting at {@code i} ({@code \b} already checked): its end, or -1. */
    private int urlEnd(String text, int i) {
        int scheme = i;
        while (scheme < text.length() && schemeChar(text.charAt(scheme))) {
            scheme++;
        }
        int after;
        if (text.startsWith("://", scheme)) {
            after = scheme + 3;
        } else if (text.startsWith("www.", i)) {
            after = i + 4;
        } else {
            return -1;
        }
        while (after < text.length()) {
            int c = text.codePointAt(after);
            if ((cls(c) & SPACE) != 0) {
                break;
            }
            after += Character.charCount(c);
        }
        return after;
    }

    /** The text with URLs replaced by a space, as {@code extract._clean} does. */
    String stripUrls(String text) {
        StringBuilder out = new StringBuilder(text.length());
        int copied = 0, i = 0;
        boolean prevWord = false;
        while (i < text.length()) {
            int c = text.codePointAt(i);
            if (asciiAlpha(c) && !prevWord) {
                int end = urlEnd(text, i);
                if (end >= 0) {
                    out.append(text, copied, i).append(' ');
                    copied = end;
                    prevWord = end > 0 && (cls(text.codePointBefore(end)) & WORD) != 0;
                    i = end;
                    continue;
                }
            }
            prevWord = (cls(c) & WORD) != 0;
            i += Character.charCount(c);
        }
        out.append(text, copied, text.length());
        return out.toString();
    }

    /** The hashtags of a cleaned text in order, or null when one is not ASCII. */
    private List<String> findTags(String text) {
        List<String> tags = new ArrayList<>(4);
        int pos = 0;
        int sign;
        while ((sign = text.indexOf('#', pos)) >= 0) {
            pos = sign + 1;
            if (sign > 0 && (cls(text.codePointBefore(sign)) & BLOCKS) != 0) {
                continue;
            }
            int end = sign + 1;
            boolean lettered = false;
            while (end < text.length()) {
                int c = text.codePointAt(end);
                int k = cls(c);
                boolean take = lettered ? (k & REST) != 0 : (k & (PREFIX | LETTER)) != 0;
                if (!take) {
                    break;
                }
                lettered |= (k & LETTER) != 0;
                end += Character.charCount(c);
            }
            if (!lettered) {
                continue;
            }
            String tag = text.substring(sign + 1, end);
            for (int j = 0; j < tag.length(); j++) {
                if (tag.charAt(j) > 127) {
                    return null;
                }
            }
            tags.add(tag);
            pos = end;
        }
        return tags;
    }
}
