/*
 * Copyright Crossdoc contributors. Licensed under the Apache License, Version 2.0.
 */
package org.crossdoc.opensearch.nori;

import java.io.IOException;
import java.io.StringReader;
import java.io.UncheckedIOException;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.apache.lucene.analysis.ko.KoreanPartOfSpeechStopFilter;
import org.apache.lucene.analysis.ko.KoreanTokenizer;
import org.apache.lucene.analysis.ko.POS;
import org.apache.lucene.analysis.ko.dict.UserDictionary;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.index.analysis.Analysis;

/**
 * Reads the options of the nori tokenizer, filter and analyzer, with the names and defaults of
 * OpenSearch's analysis-nori plugin, so index settings written for it work unchanged here.
 */
final class NoriSettings {
    static final String DECOMPOUND_MODE = "decompound_mode";
    static final String USER_DICTIONARY = "user_dictionary";
    static final String USER_DICTIONARY_RULES = "user_dictionary_rules";
    static final String DISCARD_PUNCTUATION = "discard_punctuation";
    static final String STOPTAGS = "stoptags";

    private NoriSettings() {}

    /** `decompound_mode`: none, discard or mixed (any case); Lucene's default (discard) if absent. */
    static KoreanTokenizer.DecompoundMode decompoundMode(Settings settings) {
        String value = settings.get(DECOMPOUND_MODE);
        if (value == null) {
            return KoreanTokenizer.DEFAULT_DECOMPOUND;
        }
        try {
            return KoreanTokenizer.DecompoundMode.valueOf(value.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(
                    "[" + DECOMPOUND_MODE + "] must be one of none, discard, mixed; got [" + value + "]", e);
        }
    }

    /** `discard_punctuation`, true unless set. */
    static boolean discardPunctuation(Settings settings) {
        return settings.getAsBoolean(DISCARD_PUNCTUATION, true);
    }

    /**
     * The user dictionary from `user_dictionary` (a file, relative to the node's config
     * directory) or `user_dictionary_rules` (inline lines), never both; null when neither is set.
     */
    static UserDictionary userDictionary(Environment env, Settings settings) {
        if (settings.get(USER_DICTIONARY) != null && settings.get(USER_DICTIONARY_RULES) != null) {
            throw new IllegalArgumentException(
                    "It is not allowed to use [" + USER_DICTIONARY + "] in conjunction with ["
                            + USER_DICTIONARY_RULES + "]");
        }
        // Analysis.parseWordList resolves the file against the config directory, skips `#`
        // comment lines and names the file and line on a parse error.
        List<String> rules =
                Analysis.parseWordList(env, settings, USER_DICTIONARY, USER_DICTIONARY_RULES, line -> line);
        if (rules == null || rules.isEmpty()) {
            return null;
        }
        String text = String.join("\n", rules) + "\n";
        try {
            return UserDictionary.open(new StringReader(text));
        } catch (IOException e) {
            throw new UncheckedIOException("Failed to load the nori user dictionary", e);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("Invalid nori user dictionary: " + e.getMessage(), e);
        }
    }

    /** `stoptags` (a list, or a file named by `stoptags_path`): tags to drop; Lucene's default set if absent. */
    static Set<POS.Tag> stopTags(Environment env, Settings settings) {
        List<String> tags = Analysis.parseWordList(env, settings, STOPTAGS, tag -> tag);
        if (tags == null) {
            return KoreanPartOfSpeechStopFilter.DEFAULT_STOP_TAGS;
        }
        Set<POS.Tag> resolved = EnumSet.noneOf(POS.Tag.class);
        for (String tag : tags) {
            try {
                resolved.add(POS.resolveTag(tag.trim()));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("[" + STOPTAGS + "] has an unknown tag [" + tag + "]", e);
            }
        }
        return resolved;
    }
}
